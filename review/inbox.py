"""The humas inbox query: filters, search and keyset pagination over ``posts``.

Ordered by ``priority DESC, id DESC`` within one status, which is exactly the index
``ix_posts_inbox (status, priority, id)`` read backwards (plus per-filter composite indexes), so
the first page and every next page cost the same whether the table holds a thousand posts or a
million. The cursor is the last row's ``(priority, id)``; no OFFSET anywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipelines.models import Post, PostStatus

PAGE_SIZE = 50
STATUSES = [s.value for s in PostStatus]
PLATFORMS = ("twitter", "facebook", "instagram")
MAX_QUERY_CHARS = 100


@dataclass
class InboxFilters:
    """What the reviewer asked to see; everything optional except the status."""

    status: str = PostStatus.QUEUED.value
    platform: str | None = None
    topic: str | None = None
    agency: str | None = None
    kecamatan: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    score_min: float | None = None
    score_max: float | None = None
    q: str | None = None

    @classmethod
    def from_query(cls, params: Any) -> InboxFilters:
        """Parse (and quietly drop invalid) query parameters."""

        def text(name: str, limit: int = 64) -> str | None:
            value = (params.get(name) or "").strip()
            return value[:limit] or None

        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(params.get(name) or "")
            except ValueError:
                return None

        def score(name: str) -> float | None:
            try:
                value = float(params.get(name) or "")
            except ValueError:
                return None
            return min(max(value, 0.0), 1.0) if value == value else None

        status = text("status") or PostStatus.QUEUED.value
        platform = text("platform")
        return cls(
            status=status if status in STATUSES else PostStatus.QUEUED.value,
            platform=platform if platform in PLATFORMS else None,
            topic=text("topic"),
            agency=text("agency"),
            kecamatan=text("kecamatan"),
            date_from=day("dari"),
            date_to=day("sampai"),
            score_min=score("skor_min"),
            score_max=score("skor_maks"),
            q=text("q", MAX_QUERY_CHARS),
        )

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        pairs = {
            "status": self.status, "platform": self.platform, "topic": self.topic, "agency": self.agency,
            "kecamatan": self.kecamatan, "dari": self.date_from.isoformat() if self.date_from else None,
            "sampai": self.date_to.isoformat() if self.date_to else None,
            "skor_min": None if self.score_min is None else f"{self.score_min:g}",
            "skor_maks": None if self.score_max is None else f"{self.score_max:g}", "q": self.q,
        }
        return {k: v for k, v in pairs.items() if v}


@dataclass
class InboxPage:
    """One page of the inbox and the cursor to the next one."""

    posts: list[Post]
    group_sizes: dict[int, int] = field(default_factory=dict)
    next_cursor: str | None = None


def encode_cursor(priority: float, post_id: int) -> str:
    """An opaque cursor for the row after which the next page starts."""
    return base64.urlsafe_b64encode(json.dumps([priority, post_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[float, int] | None:
    """The ``(priority, id)`` in a cursor, or None when it is missing or malformed."""
    if not cursor or len(cursor) > 200:
        return None
    try:
        priority, post_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(priority), int(post_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        return None


def escape_like(term: str) -> str:
    """A LIKE pattern matching ``term`` literally anywhere (escape char: backslash)."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def filtered_query(filters: InboxFilters) -> sa.Select[Post]:
    """SELECT posts matching the filters, in inbox order (no limit)."""
    query = sa.select(Post).where(Post.status == filters.status)
    if filters.platform:
        query = query.where(Post.platform == filters.platform)
    if filters.topic:
        query = query.where(Post.topic == filters.topic)
    if filters.agency:
        query = query.where(Post.agency == filters.agency)
    if filters.kecamatan:
        query = query.where(Post.kecamatan == filters.kecamatan)
    if filters.date_from:
        query = query.where(Post.created_at >= datetime.combine(filters.date_from, time.min, UTC))
    if filters.date_to:
        query = query.where(Post.created_at < datetime.combine(filters.date_to + timedelta(days=1), time.min, UTC))
    if filters.score_min is not None:
        query = query.where(Post.relevance_score >= filters.score_min)
    if filters.score_max is not None:
        query = query.where(Post.relevance_score <= filters.score_max)
    if filters.q and filters.q.startswith("@") and len(filters.q) > 1:
        # "@name" searches authors (prefix match).
        query = query.where(Post.author_handle.ilike(escape_like(filters.q[1:])[1:], escape="\\"))
    elif filters.q:
        # Substring search in the text only, so PostgreSQL can use the trigram index (an OR with another
        # column would force a scan); portable ILIKE, which SQLite runs as case-insensitive LIKE.
        query = query.where(Post.text.ilike(escape_like(filters.q), escape="\\"))
    return query.order_by(Post.priority.desc(), Post.id.desc())


def inbox_page(
    *, session: Session, filters: InboxFilters, cursor: str | None = None, page_size: int = PAGE_SIZE
) -> InboxPage:
    """One page of the inbox after ``cursor`` (keyset pagination), with near-duplicate group sizes."""
    query = filtered_query(filters)
    after = decode_cursor(cursor)
    if after is not None:
        priority, post_id = after
        # A row-value comparison: both PostgreSQL and SQLite (>= 3.15) turn it into an index range start.
        query = query.where(sa.tuple_(Post.priority, Post.id) < sa.tuple_(priority, post_id))
    rows = list(session.scalars(query.limit(page_size + 1)))
    next_cursor = encode_cursor(rows[page_size - 1].priority, rows[page_size - 1].id) if len(rows) > page_size else None
    posts = rows[:page_size]
    return InboxPage(posts=posts, group_sizes=group_sizes(session=session, posts=posts), next_cursor=next_cursor)


def group_sizes(*, session: Session, posts: list[Post]) -> dict[int, int]:
    """Near-duplicate group size per group id, for the groups of ``posts``."""
    group_ids = {p.dup_group_id for p in posts if p.dup_group_id is not None}
    if not group_ids:
        return {}
    # The group's first post may or may not carry its own id as dup_group_id: count it either way.
    group = sa.func.coalesce(Post.dup_group_id, Post.id)
    rows = session.execute(
        sa.select(group, sa.func.count())
        .where(sa.or_(Post.dup_group_id.in_(group_ids), Post.id.in_(group_ids)))
        .group_by(group)
    )
    return {int(gid): int(n) for gid, n in rows}


def capped_count(*, session: Session, status: str, cap: int = 1000) -> int:
    """How many posts wait in ``status``, counting at most ``cap`` (cheap on a million rows)."""
    inner = sa.select(Post.id).where(Post.status == status).limit(cap).subquery()
    return int(session.scalar(sa.select(sa.func.count()).select_from(inner)) or 0)
