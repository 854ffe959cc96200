"""post_simhash_bands: LSH buckets for near-duplicate lookup

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 22:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "post_simhash_bands",
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_simhash_bands_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("band", "post_id", name=op.f("pk_post_simhash_bands")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("post_simhash_bands")
