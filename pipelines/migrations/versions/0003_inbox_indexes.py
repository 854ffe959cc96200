"""inbox indexes: per-filter (status, value, priority, id), near-dup groups, trigram search

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FILTER_INDEXES = {
    "ix_posts_inbox_platform": ["status", "platform", "priority", "id"],
    "ix_posts_inbox_topic": ["status", "topic", "priority", "id"],
    "ix_posts_inbox_agency": ["status", "agency", "priority", "id"],
    "ix_posts_inbox_kecamatan": ["status", "kecamatan", "priority", "id"],
    "ix_posts_dup_group": ["dup_group_id"],
}


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        for name, columns in FILTER_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index("ix_posts_text_trgm", "posts", ["text"], unique=False, postgresql_using="gin",
                        postgresql_ops={"text": "gin_trgm_ops"})
    else:
        # SQLite has no trigram index; an empty partial index keeps the schema identical to the models.
        op.create_index("ix_posts_text_trgm", "posts", ["text"], unique=False, sqlite_where=sa.text("0"))


def downgrade() -> None:
    op.drop_index("ix_posts_text_trgm", table_name="posts")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        for name in reversed(FILTER_INDEXES):
            batch_op.drop_index(name)
