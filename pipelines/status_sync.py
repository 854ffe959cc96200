"""Follow forwarded complaints in LAPOR!: status changes, handling times, overdue flags, the reply.

SP4N handling times (Permenpan-RB on LAPOR!): verified and disposed to the agency within
3 working days, the agency answers within 5 working days, and LAPOR! closes a report 10 days after
the follow-up if the reporter does not reply. Working days here are Monday to Friday in the city's
time zone; national holidays are not subtracted (a complaint may be flagged a day early around them).
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring.settings import Settings, get_settings
from pipelines import audit
from pipelines.forward_policy import ForwardConfig, LaporApiConfig, StatusSyncConfig, load_forward_config
from pipelines.lapor import LaporError, RemoteStatus, Sender, public_link
from pipelines.models import Complaint, ComplaintStatusEvent, Post
from pipelines.models import aware as _aware

log = logging.getLogger(__name__)

SYNC_ACTOR = "system:status-sync"
STAGE_RANK = {"submitted": 0, "needs_info": 0, "verified": 1, "disposed": 1, "responded": 2, "closed": 3,
              "archived": 3}


def add_working_days(start: datetime, days: int, tz: str = "Asia/Makassar") -> datetime:
    """``start`` plus ``days`` working days (Mon–Fri in ``tz``), same time of day."""
    local = _aware(start).astimezone(ZoneInfo(tz))  # type: ignore[union-attr]
    added = 0
    while added < days:
        local += timedelta(days=1)
        if local.weekday() < 5:
            added += 1
    return local.astimezone(UTC)


@dataclass
class HandlingTimes:
    """When each step happened, how long it took (hours), and what is overdue."""

    forwarded_at: datetime | None = None
    verified_at: datetime | None = None
    responded_at: datetime | None = None
    closed_at: datetime | None = None
    verify_hours: float | None = None
    respond_hours: float | None = None
    close_hours: float | None = None
    verify_due: datetime | None = None
    respond_due: datetime | None = None
    close_due: datetime | None = None
    overdue: list[str] = field(default_factory=list)  # verify | respond | close


def _hours(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() / 3600, 2)


def handling_times(
    *,
    forwarded_at: datetime | None,
    events: list[tuple[str, datetime]],
    api: LaporApiConfig,
    config: StatusSyncConfig,
    tz: str = "Asia/Makassar",
    now: datetime | None = None,
) -> HandlingTimes:
    """Handling times and overdue steps of one complaint from its status events (pure)."""
    now = now or datetime.now(UTC)
    result = HandlingTimes(forwarded_at=_aware(forwarded_at))
    if result.forwarded_at is None:
        return result
    for status, at in sorted(events, key=lambda e: _aware(e[1])):  # type: ignore[arg-type,return-value]
        rank = STAGE_RANK.get(api.stage_of(status), 0)
        at = _aware(at)  # type: ignore[assignment]
        if rank >= 1 and result.verified_at is None:
            result.verified_at = at
        if rank >= 2 and result.responded_at is None:
            result.responded_at = at
        if rank >= 3 and result.closed_at is None:
            result.closed_at = at
    result.verify_hours = _hours(result.forwarded_at, result.verified_at)
    result.respond_hours = _hours(result.verified_at, result.responded_at)
    result.close_hours = _hours(result.forwarded_at, result.closed_at)
    result.verify_due = add_working_days(result.forwarded_at, config.verify_working_days, tz)
    if result.verified_at is None and now > result.verify_due:
        result.overdue.append("verify")
    if result.verified_at is not None:
        result.respond_due = add_working_days(result.verified_at, config.respond_working_days, tz)
        if result.responded_at is None and result.closed_at is None and now > result.respond_due:
            result.overdue.append("respond")
    if result.responded_at is not None:
        result.close_due = result.responded_at + timedelta(days=config.auto_close_days)
        if result.closed_at is None and now > result.close_due:
            result.overdue.append("close")
    return result


def _events(session: Session, complaint_id: int) -> list[ComplaintStatusEvent]:
    return list(
        session.scalars(
            sa.select(ComplaintStatusEvent)
            .where(ComplaintStatusEvent.complaint_id == complaint_id)
            .order_by(ComplaintStatusEvent.changed_at, ComplaintStatusEvent.id)
        )
    )


def times_for(*, session: Session, complaint: Complaint, config: ForwardConfig | None = None,
              now: datetime | None = None) -> HandlingTimes:
    """Handling times of a stored complaint."""
    config = config or load_forward_config()
    events = [(e.status, e.changed_at) for e in _events(session, complaint.id)]
    return handling_times(
        forwarded_at=complaint.forwarded_at, events=events, api=config.lapor_api, config=config.status_sync,
        tz=config.auto_forward.timezone, now=now,
    )


def _refresh(session: Session, complaint: Complaint, config: ForwardConfig, now: datetime) -> HandlingTimes:
    times = times_for(session=session, complaint=complaint, config=config, now=now)
    complaint.overdue = bool(times.overdue)
    if times.closed_at is not None and complaint.closed_at is None:
        complaint.closed_at = times.closed_at
    return times


def apply_status(
    *,
    session: Session,
    complaint: Complaint,
    remote: RemoteStatus | None = None,
    status: str | None = None,
    at: datetime | None = None,
    source: str = "sync",
    config: ForwardConfig | None = None,
    now: datetime | None = None,
) -> int:
    """Record LAPOR!'s status for ``complaint`` (new events only); returns how many changes were added."""
    config = config or load_forward_config()
    now = now or datetime.now(UTC)
    known = _events(session, complaint.id)
    last_status = known[-1].status if known else None
    last_at = _aware(known[-1].changed_at) if known else None
    added = 0
    if remote is not None and remote.history:
        for entry_status, entry_at in remote.history:
            entry_at = _aware(entry_at) or now
            if last_at is not None and entry_at <= last_at:
                continue
            if entry_status == last_status:
                continue
            session.add(ComplaintStatusEvent(complaint_id=complaint.id, status=entry_status, changed_at=entry_at,
                                             source=source, raw={"history": True}))
            last_status, last_at, added = entry_status, entry_at, added + 1
    current = remote.status if remote is not None else status
    if current and current != last_status:
        session.add(ComplaintStatusEvent(complaint_id=complaint.id, status=current,
                                         changed_at=_aware(at) or now, source=source))
        added += 1
    if current:
        complaint.lapor_status = current
    complaint.status_checked_at = now
    session.flush()
    _refresh(session, complaint, config, now)
    return added


def record_manual_status(
    *, session: Session, complaint_id: int, status: str, actor: str, at: datetime | None = None
) -> int:
    """An admin reports the status they see in LAPOR! (manual-entry deployments); commits."""
    complaint = session.get(Complaint, complaint_id)
    if complaint is None or not complaint.tracking_id:
        raise ValueError(f"Aduan #{complaint_id} belum punya nomor pelacakan LAPOR!.")
    status = status.strip()[:64]
    if not status:
        raise ValueError("Status kosong.")
    added = apply_status(session=session, complaint=complaint, status=status, at=at, source="manual")
    audit.record(session=session, actor=actor, action="complaint.status", object_type="complaint",
                 object_id=complaint_id, details={"status": status, "source": "manual"})
    session.commit()
    return added


@dataclass
class SyncSummary:
    checked: int = 0
    changed: int = 0
    overdue: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict (task result)."""
        return asdict(self)


def open_complaint_ids(*, session: Session, limit: int = 5000) -> list[int]:
    """Complaints in LAPOR! that are not closed yet, least recently checked first."""
    query = (
        sa.select(Complaint.id)
        .where(Complaint.tracking_id.is_not(None), Complaint.closed_at.is_(None))
        .order_by(Complaint.status_checked_at.is_not(None), Complaint.status_checked_at, Complaint.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def sync_all(*, settings: Settings | None = None, sender: Sender | None = None, limit: int = 5000,
             now: datetime | None = None) -> SyncSummary:
    """Ask LAPOR! for every open complaint's status; one transaction per complaint.

    Raises the last LAPOR! error when every lookup failed (LAPOR! down), so the task retries.
    """
    from jaring.db import session_factory
    from pipelines.outbox import cached_sender

    settings = settings or get_settings()
    config = load_forward_config(settings.forward_policy_file)
    sender = sender or cached_sender(settings)
    summary = SyncSummary()
    last_error: LaporError | None = None
    factory = session_factory()
    with factory() as session:
        ids = open_complaint_ids(session=session, limit=limit)
    for complaint_id in ids:
        with factory() as session:
            complaint = session.get(Complaint, complaint_id)
            if complaint is None or not complaint.tracking_id:
                continue
            remote = None
            if not sender.manual:
                try:
                    remote = sender.status(tracking_id=complaint.tracking_id)
                except LaporError as exc:
                    summary.errors += 1
                    last_error = exc
                    log.warning("status of complaint %s: %s", complaint_id, exc)
                    continue
            summary.checked += 1
            summary.changed += apply_status(session=session, complaint=complaint, remote=remote,
                                            config=config, now=now)
            summary.overdue += int(complaint.overdue)
            session.commit()
    if last_error is not None and summary.checked == 0:
        raise last_error
    return summary


def handling_summary(*, session: Session, since: datetime | None = None, limit: int = 20_000) -> dict[str, Any]:
    """Median handling times (hours) and the overdue count over complaints forwarded since ``since``.

    Two queries whatever the number of complaints (default window: the last 90 days, newest ``limit``).
    """
    config = load_forward_config()
    since = since or datetime.now(UTC) - timedelta(days=90)
    forwarded_rows = session.execute(
        sa.select(Complaint.id, Complaint.forwarded_at)
        .where(Complaint.forwarded_at.is_not(None), Complaint.forwarded_at >= since)
        .order_by(Complaint.forwarded_at.desc())
        .limit(limit)
    ).all()
    events: dict[int, list[tuple[str, datetime]]] = {row.id: [] for row in forwarded_rows}
    if events:
        for complaint_id, status, changed_at in session.execute(
            sa.select(ComplaintStatusEvent.complaint_id, ComplaintStatusEvent.status, ComplaintStatusEvent.changed_at)
            .join(Complaint, Complaint.id == ComplaintStatusEvent.complaint_id)
            .where(Complaint.forwarded_at.is_not(None), Complaint.forwarded_at >= since)
        ):
            if complaint_id in events:
                events[complaint_id].append((status, changed_at))
    verify: list[float] = []
    respond: list[float] = []
    close: list[float] = []
    overdue = 0
    for row in forwarded_rows:
        times = handling_times(forwarded_at=row.forwarded_at, events=events[row.id], api=config.lapor_api,
                               config=config.status_sync, tz=config.auto_forward.timezone)
        overdue += int(bool(times.overdue))
        for bucket, value in ((verify, times.verify_hours), (respond, times.respond_hours),
                              (close, times.close_hours)):
            if value is not None:
                bucket.append(value)

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    return {
        "forwarded": len(forwarded_rows),
        "overdue": overdue,
        "median_verify_hours": median(verify),
        "median_respond_hours": median(respond),
        "median_close_hours": median(close),
    }


# --- The reply to the citizen -------------------------------------------------------------------


class ReplyRetry(Exception):
    """The platform could not take the reply now; try again later."""


def reply_text(*, tracking_id: str, message: str, settings: Settings | None = None) -> str:
    """The reply: the configured message with the tracking id and public link, nothing personal."""
    link = public_link(tracking_id, settings)
    return message.format(tracking_id=tracking_id, link=link)[:270]


def reply_to_citizen(*, complaint_id: int, settings: Settings | None = None) -> str:
    """Reply once on the original post with the LAPOR! link, if enabled for its platform.

    At most once: ``replied_at`` is claimed (committed) before the platform call and released only if
    the platform certainly refused it, so a crash never produces two public replies.
    """
    from harvester import reply as platform_reply
    from jaring.db import session_factory

    settings = settings or get_settings()
    config = load_forward_config(settings.forward_policy_file).reply
    factory = session_factory()
    with factory() as session:
        complaint = session.get(Complaint, complaint_id)
        if complaint is None or not complaint.tracking_id or complaint.post_id is None:
            return "skipped: no tracking id or no post"
        post = session.get(Post, complaint.post_id)
        if post is None or not config.enabled_for(post.platform):
            return "skipped: replies off for this platform"
        claimed = session.execute(
            sa.update(Complaint)
            .where(Complaint.id == complaint_id, Complaint.replied_at.is_(None))
            .values(replied_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
        if claimed != 1:
            return "skipped: already replied"
        text = reply_text(tracking_id=complaint.tracking_id, message=config.message, settings=settings)
        target = post.external_id
        try:
            reply_id = platform_reply.reply(platform=post.platform, target_id=target, text=text, settings=settings)
        except platform_reply.ReplyError as exc:
            if exc.sent_maybe:
                audit.record(session=session, actor=SYNC_ACTOR, action="complaint.reply_unknown",
                             object_type="complaint", object_id=complaint_id, details={"error": str(exc)[:300]})
                session.commit()
                return "unknown: not retried"
            session.execute(sa.update(Complaint).where(Complaint.id == complaint_id).values(replied_at=None))
            session.commit()
            if exc.retryable:
                raise ReplyRetry(str(exc)) from None
            audit.record(session=session, actor=SYNC_ACTOR, action="complaint.reply_failed",
                         object_type="complaint", object_id=complaint_id, details={"error": str(exc)[:300]})
            session.commit()
            return f"failed: {exc}"
        audit.record(session=session, actor=SYNC_ACTOR, action="complaint.replied", object_type="complaint",
                     object_id=complaint_id, details={"platform": post.platform, "reply_id": reply_id})
        session.commit()
        return f"replied: {reply_id}"
