"""Forwarding configuration and the auto-forward policy.

``config/forward_policy.yaml`` (``settings.forward_policy_file``) holds four sections: the auto-forward
rules, delivery tuning, the LAPOR! API contract and the reply to the citizen. It is validated on load
and re-read when the file changes, so a job queued before an edit acts on the current policy.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from jaring.settings import Settings, get_settings
from pipelines.models import Complaint, Post, PostStatus, utcnow
from pipelines.review_actions import OPEN_STATUSES

POLICY_ACTOR = "system:auto-forward"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AutoForwardRule(_Strict):
    """Forward posts with these labels automatically when every score reaches its minimum."""

    topic: str = "*"
    agency: str = "*"
    enabled: bool = True
    min_relevance: float = Field(default=0.9, ge=0, le=1)
    min_topic: float = Field(default=0.0, ge=0, le=1)
    min_agency: float = Field(default=0.0, ge=0, le=1)
    daily_cap: int | None = Field(default=None, ge=0)

    def matches(self, *, topic: str | None, agency: str | None) -> bool:
        """Whether this rule speaks about a post with these labels."""
        return self.topic in ("*", topic) and self.agency in ("*", agency)


class AutoForwardConfig(_Strict):
    enabled: bool = False
    timezone: str = "Asia/Makassar"
    daily_cap: int = Field(default=100, ge=0)
    rules: tuple[AutoForwardRule, ...] = ()


class DeliveryConfig(_Strict):
    lease_seconds: float = Field(default=120, gt=0)
    backoff_base_seconds: float = Field(default=5, ge=0)
    backoff_max_seconds: float = Field(default=1800, ge=0)
    max_attempts: int = Field(default=25, ge=1)
    sweep_interval_seconds: float = Field(default=30, gt=0)
    sweep_batch: int = Field(default=500, ge=1)


class StatusSyncConfig(_Strict):
    interval_seconds: float = Field(default=3600, gt=0)
    verify_working_days: int = 3
    respond_working_days: int = 5
    auto_close_days: int = 10


class LaporApiConfig(_Strict):
    """Paths, auth and field names of the LAPOR! API (see docs/lapor-api.md)."""

    categories_path: str = "/api/v1/categories"
    submit_path: str = "/api/v1/reports"
    status_path: str = "/api/v1/reports/{tracking_id}"
    lookup_path: str = "/api/v1/reports"
    lookup_param: str = "external_ref"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    idempotency_header: str = "Idempotency-Key"
    response_tracking_field: str = "trackingid"
    response_status_field: str = "status"
    response_list_field: str = "data"
    fields: dict[str, str] = Field(
        default_factory=lambda: {
            "title": "judul",
            "body": "isi",
            "incident_date": "tanggal_kejadian",
            "location": "lokasi",
            "category": "kategori",
            "instansi": "instansi_tujuan",
            "anonymous": "anonim",
            "confidential": "rahasia",
            "attachments": "lampiran",
            "external_ref": "external_ref",
        }
    )
    statuses: dict[str, str] = Field(default_factory=dict)

    def stage_of(self, status: str | None) -> str:
        """Our lifecycle stage for a LAPOR! status text (unknown texts count as ``submitted``)."""
        if not status:
            return "submitted"
        return self.statuses.get(status, "submitted")


class ReplyConfig(_Strict):
    twitter: bool = False
    facebook: bool = False
    instagram: bool = False
    message: str = (
        "Terima kasih atas laporan Anda. Keluhan ini sudah kami teruskan ke LAPOR! SP4N "
        "dengan nomor {tracking_id}. Pantau tindak lanjutnya di {link}"
    )

    def enabled_for(self, platform: str) -> bool:
        """Whether replies are switched on for this platform."""
        return bool(getattr(self, platform, False)) if platform in ("twitter", "facebook", "instagram") else False


class ForwardConfig(_Strict):
    auto_forward: AutoForwardConfig = AutoForwardConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    status_sync: StatusSyncConfig = StatusSyncConfig()
    lapor_api: LaporApiConfig = LaporApiConfig()
    reply: ReplyConfig = ReplyConfig()


_cache: dict[Path, tuple[float, ForwardConfig]] = {}
_cache_lock = threading.Lock()


def load_forward_config(path: Path | str | None = None) -> ForwardConfig:
    """The forwarding configuration at ``path`` (default: settings), re-read when the file changes.

    A missing file means the safe defaults: auto-forward off, replies off.
    """
    path = Path(path) if path is not None else get_settings().forward_policy_file
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return ForwardConfig()
    with _cache_lock:
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = ForwardConfig.model_validate(data)
    with _cache_lock:
        _cache[path] = (mtime, config)
    return config


# --- The auto-forward decision --------------------------------------------------------------------


def decide(
    *, config: AutoForwardConfig, post: Post, auto_today: int, rule_today: int | None = None
) -> tuple[bool, str, AutoForwardRule | None]:
    """Whether the policy forwards ``post`` (labels already stored), with the reason; pure."""
    if not config.enabled:
        return False, "kill switch: auto-forward disabled", None
    if post.relevance != "keluhan":
        return False, f"relevance is {post.relevance!r}, not keluhan", None
    rule = next((r for r in config.rules if r.matches(topic=post.topic, agency=post.agency)), None)
    if rule is None:
        return False, f"no rule for topic={post.topic} agency={post.agency}", None
    if not rule.enabled:
        return False, f"rule for topic={rule.topic} agency={rule.agency} requires a reviewer", rule
    checks = (
        ("relevance", post.relevance_score, rule.min_relevance),
        ("topic", post.topic_score, rule.min_topic),
        ("agency", post.agency_score, rule.min_agency),
    )
    for head, score, minimum in checks:
        if score is None or score < minimum:
            return False, f"{head} score {score} below {minimum}", rule
    if auto_today >= config.daily_cap:
        return False, f"daily cap {config.daily_cap} reached", rule
    if rule.daily_cap is not None and (rule_today or 0) >= rule.daily_cap:
        return False, f"rule daily cap {rule.daily_cap} reached", rule
    return True, "policy", rule


def _start_of_day(tz_name: str, now: datetime | None = None) -> datetime:
    tz = ZoneInfo(tz_name)
    local = (now or datetime.now(UTC)).astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


# Key of the PostgreSQL advisory lock that serialises daily-cap counting ("JARING" in ASCII).
DAILY_CAP_LOCK_KEY = 0x4A4152494E47


def _serialise_cap_counting(session: Session) -> None:
    """Hold the daily-cap lock until the caller's transaction ends, so two workers never both take the last slot.

    Counting today's automatic complaints and adding one is a read-then-write: without a lock two classify
    workers can both count ``cap - 1`` and both forward. On PostgreSQL a transaction-scoped advisory lock
    makes the count-and-insert atomic across workers (released at commit or rollback). SQLite allows one
    writer at a time, and the classify stage has already written its batch when it gets here, so its
    connection holds the database write lock and the count is already serialised.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(DAILY_CAP_LOCK_KEY)))


def _count_auto_since(session: Session, since: datetime, rule: AutoForwardRule | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(Complaint).where(Complaint.auto.is_(True))
    query = query.where(Complaint.created_at >= since)
    if rule is not None:
        if rule.topic != "*":
            query = query.where(Complaint.topic == rule.topic)
        if rule.agency != "*":
            query = query.where(Complaint.agency == rule.agency)
    return int(session.scalar(query) or 0)


def near_duplicate_already_forwarded(*, session: Session, post: Post) -> int | None:
    """The id of a complaint already made from a post in ``post``'s near-duplicate group, if any."""
    related: set[int] = {post.id}
    for value in (post.duplicate_of_id, post.dup_group_id):
        if value:
            related.add(int(value))
    conditions: list[Any] = [Post.id.in_(related), Post.duplicate_of_id.in_(related)]
    if post.dup_group_id:
        conditions.append(Post.dup_group_id == post.dup_group_id)
    group_posts = sa.select(Post.id).where(sa.or_(*conditions))
    return session.scalar(
        sa.select(Complaint.id).where(Complaint.post_id.in_(group_posts)).order_by(Complaint.id).limit(1)
    )


def _latest_classification(session: Session, post_id: int) -> Any:
    from pipelines.models import Classification

    return session.scalar(
        sa.select(Classification)
        .where(Classification.post_id == post_id)
        .order_by(Classification.id.desc())
        .limit(1)
    )


class _ReviewerWasFirst(Exception):
    """The post left the review queue between loading it and forwarding it."""


def apply_auto_forward(*, session: Session, post_id: int, settings: Settings | None = None) -> int | None:
    """Forward ``post_id`` automatically if the policy allows it; returns the new outbox id.

    Runs in the caller's transaction (does not commit). Called by the classify stage after the labels
    are stored; the caller schedules delivery of the returned outbox id after its commit.
    """
    from classifier.city import load_city
    from pipelines import audit, outbox
    from pipelines.complaints import draft_from_post

    settings = settings or get_settings()
    config = load_forward_config(settings.forward_policy_file).auto_forward
    post = session.get(Post, post_id)
    if post is None or post.status not in OPEN_STATUSES:
        return None
    if session.scalar(sa.select(Complaint.id).where(Complaint.post_id == post.id)) is not None:
        return None
    forward, reason, rule = decide(config=config, post=post, auto_today=0, rule_today=0)
    if forward:  # only then are the daily caps worth counting
        _serialise_cap_counting(session)
        since = _start_of_day(config.timezone)
        auto_today = _count_auto_since(session, since)
        rule_today = _count_auto_since(session, since, rule) if rule is not None and rule.daily_cap else None
        forward, reason, rule = decide(config=config, post=post, auto_today=auto_today, rule_today=rule_today)
    classification = _latest_classification(session, post.id)
    model_version = getattr(classification, "model_version", "") or ""
    scores = {
        "relevance": [post.relevance, post.relevance_score],
        "topic": [post.topic, post.topic_score],
        "agency": [post.agency, post.agency_score],
    }
    if forward:
        duplicate = near_duplicate_already_forwarded(session=session, post=post)
        if duplicate is not None:
            forward, reason = False, f"near-duplicate of already forwarded complaint {duplicate}"
    if not forward:
        if rule is not None and config.enabled:  # the policy weighed this post: say why it waits
            audit.record(
                session=session,
                actor=POLICY_ACTOR,
                action="auto_forward.skipped",
                object_type="post",
                object_id=str(post.id),
                details={"reason": reason, "model_version": model_version, "scores": scores},
            )
        return None

    city = load_city(settings.city_file)
    draft = draft_from_post(post=post, city=city)
    complaint = draft.to_complaint(post_id=post.id, auto=True, model_version=model_version)
    try:
        with session.begin_nested():
            session.add(complaint)
            session.flush()
            item = outbox.enqueue(session=session, complaint=complaint, actor=POLICY_ACTOR, settings=settings)
            # Conditional, like a reviewer's own action: ``post`` may have been loaded before a reviewer
            # rejected or confirmed it; then the reviewer wins and the savepoint drops complaint and item.
            taken = session.execute(
                sa.update(Post)
                .where(Post.id == post.id, Post.status.in_(OPEN_STATUSES))
                .values(status=PostStatus.CONFIRMED.value, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if taken != 1:
                raise _ReviewerWasFirst()
    except (IntegrityError, _ReviewerWasFirst):
        # A reviewer made a complaint of this post, or decided it, at the same moment: theirs stands.
        if complaint in session:
            session.expunge(complaint)
        return None
    set_committed_value(post, "status", PostStatus.CONFIRMED.value)
    audit.record(
        session=session,
        actor=POLICY_ACTOR,
        action="auto_forward.forwarded",
        object_type="post",
        object_id=str(post.id),
        details={
            "complaint_id": complaint.id,
            "outbox_id": item.id,
            "model_version": model_version,
            "scores": scores,
            "rule": {"topic": rule.topic, "agency": rule.agency} if rule else None,
        },
    )
    return item.id

