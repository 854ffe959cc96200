"""Every table of Jaring. Migrations in ``pipelines/migrations`` mirror this file exactly.

Conventions: ids are 64-bit; times are timezone-aware UTC; raw payloads are kept as received
(JSON) so history can be re-normalised and re-classified without re-harvesting.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jaring.db import Base, BigId

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC: SQLite hands back naive datetimes, and everything we store is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(enum.StrEnum):
    """What a user may do. Viewers (leaders) see only the dashboard."""

    VIEWER = "viewer"
    REVIEWER = "reviewer"
    ANALYST = "analyst"
    ADMIN = "admin"


class PostStatus(enum.StrEnum):
    """Where a captured post is in its lifecycle."""

    NEW = "new"  # stored, not yet classified
    QUEUED = "queued"  # classified, waiting for a reviewer
    CONFIRMED = "confirmed"  # a reviewer (or the auto-forward policy) confirmed it as a complaint
    REJECTED = "rejected"  # not a complaint, spam or duplicate
    FORWARDED = "forwarded"  # its complaint reached LAPOR!


class OutboxState(enum.StrEnum):
    """Delivery state of one complaint to LAPOR!."""

    PENDING = "pending"  # waiting for the sender (or its next retry time)
    SENDING = "sending"  # a worker claimed it; outcome not yet stored
    UNKNOWN = "unknown"  # the request went out and the outcome was lost: check before re-sending
    AWAITING_MANUAL = "awaiting_manual"  # manual-entry sender: waits for an admin to type it into LAPOR!
    SENT = "sent"  # LAPOR! gave a tracking id
    DEAD = "dead"  # permanent error: needs a person to fix and retry


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.REVIEWER.value)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Part of every session cookie's fingerprint: logging out bumps it, which ends every session of the
    # account, including a copy of the cookie taken before (migration 0005).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Post(Base):
    """A captured post or comment, with its raw payload and its current labels (denormalised for the inbox)."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index("ix_posts_inbox", "status", "priority", "id"),
        Index("ix_posts_content_hash", "content_hash"),
        Index("ix_posts_simhash_band", "simhash_band"),
        Index("ix_posts_created_at", "created_at"),
        # Inbox filters keep the (priority, id) order inside each filter value (migration 0003).
        Index("ix_posts_inbox_platform", "status", "platform", "priority", "id"),
        Index("ix_posts_inbox_topic", "status", "topic", "priority", "id"),
        Index("ix_posts_inbox_agency", "status", "agency", "priority", "id"),
        Index("ix_posts_inbox_kecamatan", "status", "kecamatan", "priority", "id"),
        Index("ix_posts_dup_group", "dup_group_id"),
        Index("ix_posts_inbox_score", "status", "relevance_score"),  # narrow score ranges (migration 0004)
        # Inbox search: a trigram index on PostgreSQL; on SQLite an empty partial index (WHERE 0).
        Index("ix_posts_text_trgm", "text", postgresql_using="gin", postgresql_ops={"text": "gin_trgm_ops"},
              sqlite_where=sql_text("0")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))  # twitter | facebook | instagram
    external_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), default="post")  # tweet, fb_post, fb_comment, ig_media, ...
    source_key: Mapped[str] = mapped_column(String(64), default="")
    author_id: Mapped[str] = mapped_column(String(128), default="")
    author_handle: Mapped[str] = mapped_column(String(200), default="")
    author_name: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    lang: Mapped[str] = mapped_column(String(16), default="")
    url: Mapped[str] = mapped_column(String(1000), default="")
    media: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    parent_external_id: Mapped[str | None] = mapped_column(String(128))  # the post a comment answers
    thread_external_id: Mapped[str | None] = mapped_column(String(128))  # conversation root
    referenced: Mapped[list[Any]] = mapped_column(JsonType, default=list)  # retweet/quote/reply-of links
    original_post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))  # retweet/quote → original
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    harvested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    raw: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # payload exactly as received

    # Dedupe annotates, never deletes.
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    simhash: Mapped[int | None] = mapped_column(BigInteger)
    simhash_band: Mapped[int | None] = mapped_column(Integer)
    dup_group_id: Mapped[int | None] = mapped_column(BigInteger)  # id of the group's first post
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    duplicate_reason: Mapped[str] = mapped_column(String(200), default="")

    # Lifecycle and current labels.
    status: Mapped[str] = mapped_column(String(16), default=PostStatus.NEW.value)
    # When a classify message for this post was last published (migration 0006): the sweep re-queues a
    # post still ``new`` only once this is older than ``classify_requeue_seconds``.
    classify_queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    relevance: Mapped[str | None] = mapped_column(String(16))
    relevance_score: Mapped[float | None] = mapped_column(Float)
    topic: Mapped[str | None] = mapped_column(String(32))
    topic_score: Mapped[float | None] = mapped_column(Float)
    agency: Mapped[str | None] = mapped_column(String(32))
    agency_score: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    kecamatan: Mapped[str | None] = mapped_column(String(64))
    kelurahan: Mapped[str | None] = mapped_column(String(64))


class PostVersion(Base):
    """An earlier text of an edited post."""

    __tablename__ = "post_versions"
    __table_args__ = (UniqueConstraint("post_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PostSimhashBand(Base):
    """LSH index for near-duplicate lookup: one row per MinHash band bucket of a group-root post.

    Similar texts share a bucket with high probability and unrelated ones almost never, so a lookup
    reads only the few posts in a new post's buckets, whatever the number of stored posts.
    """

    __tablename__ = "post_simhash_bands"
    __table_args__ = {"sqlite_with_rowid": False}  # the primary key is the table: one B-tree write per row

    band: Mapped[int] = mapped_column(Integer, primary_key=True)  # 32-bit hash of (band index, band values)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)


class Quarantine(Base):
    """A payload that could not be parsed: kept whole, with the reason, never dropped."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64), default="")
    platform: Mapped[str] = mapped_column(String(16), default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("harvest_runs.id"))
    reason: Mapped[str] = mapped_column(Text)
    raw_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)


class Classification(Base):
    """One model's verdict on one post; a post keeps every verdict it ever got."""

    __tablename__ = "classifications"
    __table_args__ = (Index("ix_classifications_post", "post_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(64))
    relevance: Mapped[str] = mapped_column(String(16))
    relevance_score: Mapped[float] = mapped_column(Float)
    topic: Mapped[str | None] = mapped_column(String(32))
    topic_score: Mapped[float | None] = mapped_column(Float)
    agency: Mapped[str | None] = mapped_column(String(32))
    agency_score: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # full distributions per head
    explanation: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # terms that pushed each label
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Review(Base):
    """A reviewer's decision on a post, with corrected labels."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_post", "post_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(32))  # confirm | not_complaint | spam | duplicate
    relevance: Mapped[str | None] = mapped_column(String(16))
    topic: Mapped[str | None] = mapped_column(String(32))
    agency: Mapped[str | None] = mapped_column(String(32))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Complaint(Base):
    """A formal complaint shaped for LAPOR!. One per post (the unique key stops double forwarding)."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(200), default="")
    topic: Mapped[str | None] = mapped_column(String(32))
    agency: Mapped[str | None] = mapped_column(String(32))  # government function, e.g. PUPR
    opd: Mapped[str] = mapped_column(String(300), default="")  # the city's agency name
    instansi: Mapped[str] = mapped_column(String(300), default="")  # LAPOR! instansi
    kecamatan: Mapped[str | None] = mapped_column(String(64))
    kelurahan: Mapped[str | None] = mapped_column(String(64))
    location_text: Mapped[str] = mapped_column(String(500), default="")
    incident_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attachments: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential: Mapped[bool] = mapped_column(Boolean, default=True)
    auto: Mapped[bool] = mapped_column(Boolean, default=False)  # forwarded by the policy, not a person
    model_version: Mapped[str] = mapped_column(String(64), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tracking_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    lapor_status: Mapped[str | None] = mapped_column(String(64))
    forwarded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ComplaintStatusEvent(Base):
    """A status change of a complaint in LAPOR!, with the time it was seen."""

    __tablename__ = "complaint_status_events"
    __table_args__ = (Index("ix_complaint_status_events_complaint", "complaint_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str] = mapped_column(String(32), default="sync")  # sync | manual | sender
    raw: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class OutboxItem(Base):
    """One complaint to deliver to LAPOR!, written in the same transaction as the decision to forward."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    sender: Mapped[str] = mapped_column(String(16), default="api")
    state: Mapped[str] = mapped_column(String(24), default=OutboxState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ForwardAttempt(Base):
    """One try at delivering an outbox item, whatever its outcome."""

    __tablename__ = "forward_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(24), default="")  # sent | retry | dead | unknown
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")


class HarvestRun(Base):
    """One run of one source: what it fetched and what went wrong."""

    __tablename__ = "harvest_runs"
    __table_args__ = (Index("ix_harvest_runs_source", "source_key", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | failed | partial
    pages: Mapped[int] = mapped_column(Integer, default=0)
    fetched_count: Mapped[int] = mapped_column(Integer, default=0)
    new_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    quarantined_count: Mapped[int] = mapped_column(Integer, default=0)
    rate_limit_wait_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    errors: Mapped[list[Any]] = mapped_column(JsonType, default=list)


class SourceState(Base):
    """Runtime health of a configured source, and the lease that stops two runs overlapping."""

    __tablename__ = "source_states"

    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    health: Mapped[str] = mapped_column(String(16), default="ok")  # ok | backoff | failing | stopped
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    backoff_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, default="")
    lease_owner: Mapped[str] = mapped_column(String(200), default="")
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the dispatcher last queued a run (a queued run is not queued again until it starts or its
    # schedule interval passes).
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """Where a source's cursor stands (e.g. the newest tweet id per account), committed after the posts."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("source_key", "cursor"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64))
    cursor: Mapped[str] = mapped_column(String(200))  # e.g. "mentions:1234" or "feed:page-id"
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditLog(Base):
    """Append-only record of every action, with who did it. Triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # a username, or "system:<component>"
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
