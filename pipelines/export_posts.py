"""Export captured posts as JSON Lines with personal data masked."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from jaring.privacy import mask_pii
from pipelines.models import Post

EXPORT_FIELDS = (
    "id",
    "platform",
    "external_id",
    "kind",
    "author_handle",
    "url",
    "status",
    "relevance",
    "relevance_score",
    "topic",
    "topic_score",
    "agency",
    "agency_score",
    "kecamatan",
    "kelurahan",
    "dup_group_id",
    "duplicate_of_id",
)


def write_posts_jsonl(*, session: Session, path: Path, limit: int | None = None, batch: int = 1000) -> int:
    """Write posts in id order, streaming; returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    query = select(Post).order_by(Post.id)
    if limit:
        query = query.limit(limit)
    with path.open("w", encoding="utf-8") as fh:
        for post in session.scalars(query.execution_options(yield_per=batch)):
            row = {name: getattr(post, name) for name in EXPORT_FIELDS}
            row["text"] = mask_pii(post.text or "")
            row["author_name"] = mask_pii(post.author_name or "")
            row["created_at"] = post.created_at.isoformat() if post.created_at else None
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
