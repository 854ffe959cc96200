"""source_states queued_at: one dispatcher tick queues due sources from the sources file read fresh

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_states", schema=None) as batch_op:
        batch_op.drop_column("queued_at")
