"""inbox score index: (status, relevance_score) so a narrow or empty score range is not a table scan

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 23:10:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index("ix_posts_inbox_score", ["status", "relevance_score"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_inbox_score")
