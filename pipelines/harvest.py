"""Run one harvest of one source: lease, collect, store page by page, then move checkpoints.

The order is what makes harvesting lossless: each page is stored and committed before the
collector goes on, and a checkpoint is written only when the collector proposes it — after the
last page of its stream. A run that dies anywhere leaves the checkpoint where it was, so the next
run re-reads what was not yet covered; the store ignores what it already has.

Two runs of one source never overlap: ``source_states.lease_owner/lease_expires_at`` is taken
with a single conditional UPDATE (atomic on SQLite and PostgreSQL), renewed after every page,
and expires on its own if the worker holding it crashes.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from harvester.graph import FacebookCollector, GraphClient, InstagramCollector
from harvester.http import Waiter
from harvester.twitter import TwitterAccount, TwitterCollector
from harvester.types import (
    CheckpointProposal,
    HarvestError,
    Notice,
    Page,
    QuarantinedItem,
    RateLimited,
    RawItem,
    SourceAuthError,
    TransientError,
    utc_from_timestamp,
)
from jaring.db import session_factory
from jaring.privacy import mask_pii
from jaring.settings import Settings, get_settings
from pipelines import audit
from pipelines.ingest import IngestResult, ingest_posts
from pipelines.models import Checkpoint, HarvestRun, SourceState, aware
from pipelines.sources import SourceConfig, SourceConfigError, get_source

log = logging.getLogger(__name__)

ACTOR = "system:harvester"


@dataclass
class HarvestSummary:
    """What one run did. ``status``: ok, partial, failed, disabled, locked, backoff, stopped, unknown."""

    source_key: str
    status: str
    run_id: int | None = None
    new_post_ids: list[int] = field(default_factory=list)
    updated_post_ids: list[int] = field(default_factory=list)
    pages: int = 0
    fetched: int = 0
    seen_again: int = 0
    near_duplicates: int = 0
    quarantined: int = 0
    rate_limit_wait_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (for the task result and the CLI)."""
        return asdict(self)


def _insert(session: Session, table: Any) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)


# -- lease ----------------------------------------------------------------------------------------


def ensure_state(*, session: Session, source_key: str) -> None:
    """Create the source's state row if it does not exist (race-free)."""
    session.execute(_insert(session, SourceState).values(source_key=source_key).on_conflict_do_nothing())


def lease_is_free(now: datetime) -> sa.ColumnElement[bool]:
    """SQL condition: nobody holds the source's lease at ``now`` (never taken, released or expired)."""
    return sa.or_(
        SourceState.lease_owner == "",
        SourceState.lease_expires_at.is_(None),
        SourceState.lease_expires_at < now,
    )


def acquire_lease(*, session: Session, source_key: str, owner: str, now: datetime, seconds: int) -> bool:
    """Take the source's lease if it is free or expired; True if we hold it now. Does not commit."""
    ensure_state(session=session, source_key=source_key)
    result = session.execute(
        sa.update(SourceState)
        .where(
            SourceState.source_key == source_key,
            sa.or_(lease_is_free(now), SourceState.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def renew_lease(*, session: Session, source_key: str, owner: str, now: datetime, seconds: int) -> bool:
    """Extend our lease; False if it expired and someone else took it."""
    result = session.execute(
        sa.update(SourceState)
        .where(SourceState.source_key == source_key, SourceState.lease_owner == owner)
        .values(lease_expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def release_lease(*, session: Session, source_key: str, owner: str) -> None:
    """Give the lease back (only if we still hold it)."""
    session.execute(
        sa.update(SourceState)
        .where(SourceState.source_key == source_key, SourceState.lease_owner == owner)
        .values(lease_owner="", lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


class LeaseLost(HarvestError):
    """Our lease expired and another worker took the source over; stop without storing more."""


# -- checkpoints ----------------------------------------------------------------------------------


def load_checkpoints(*, session: Session, source_key: str) -> dict[str, str]:
    """The source's cursors, e.g. {"mentions:123": "178..."}."""
    rows = session.execute(
        sa.select(Checkpoint.cursor, Checkpoint.value).where(Checkpoint.source_key == source_key)
    )
    return {cursor: value for cursor, value in rows}


def _ahead(new: str, old: str) -> bool:
    if new.isdigit() and old.isdigit():
        return int(new) > int(old)
    return new > old  # ISO times of one format sort as text


def save_checkpoint(*, session: Session, source_key: str, cursor: str, value: str, now: datetime) -> bool:
    """Move a cursor forward (never back); True if it moved. Does not commit."""
    current = session.scalar(
        sa.select(Checkpoint.value).where(Checkpoint.source_key == source_key, Checkpoint.cursor == cursor)
    )
    if current is not None and not _ahead(value, current):
        return False
    stmt = _insert(session, Checkpoint).values(
        source_key=source_key, cursor=cursor[:200], value=value[:200], updated_at=now
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["source_key", "cursor"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
    )
    return True


def prune_checkpoints(*, session: Session, source: SourceConfig, now: datetime) -> int:
    """Forget per-post comment cursors untouched for longer than the comment window (posts too old to scan)."""
    horizon = now - timedelta(days=source.comment_window_days + 2)
    result = session.execute(
        sa.delete(Checkpoint)
        .where(
            Checkpoint.source_key == source.key,
            Checkpoint.cursor.like("comments:%"),
            Checkpoint.updated_at < horizon,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- collectors -----------------------------------------------------------------------------------


def build_collector(source: SourceConfig, settings: Settings, waiter: Waiter) -> Any:
    """The collector for a source, with its credential read from the environment now."""
    token = source.credential(settings)
    if not token:
        raise SourceAuthError(
            f"no credential: set {source.credentials_env or 'the platform token'} in the environment",
            stop=False,
        )
    timeout = settings.http_timeout_seconds
    if source.platform == "twitter":
        return TwitterCollector(
            bearer_token=token,
            base_url=settings.twitter_api_base,
            timeout=timeout,
            accounts=[TwitterAccount(a["id"], a.get("handle", "")) for a in source.accounts],
            queries=list(source.queries),
            page_size=source.page_size,
            waiter=waiter,
        )
    client = GraphClient(
        token=token,
        base_url=settings.graph_api_base,
        version=settings.graph_api_version,
        timeout=timeout,
        waiter=waiter,
    )
    common: dict[str, Any] = {
        "overlap": timedelta(minutes=source.overlap_minutes),
        "first_run_lookback": timedelta(hours=source.first_run_lookback_hours),
        "comment_window": timedelta(days=source.comment_window_days),
        "page_size": source.page_size,
    }
    if source.platform == "facebook":
        return FacebookCollector(client=client, page_ids=list(source.page_ids), **common)
    return InstagramCollector(
        client=client,
        account_ids=list(source.ig_account_ids),
        own_usernames=tuple(source.own_usernames),
        **common,
    )


def default_owner() -> str:
    """A lease owner name unique to this worker process and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


# -- the run ----------------------------------------------------------------------------------------


def run_source(
    *,
    source_key: str,
    settings: Settings | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
    owner: str | None = None,
    force: bool = False,
) -> HarvestSummary:
    """Harvest one source once. ``sleep``/``clock`` are injectable so tests never wait for real.

    Re-reads the source from the sources file: a source switched off since it was scheduled returns
    ``disabled``. A source whose lease is held returns ``locked``; one in backoff or stopped by an
    expired token returns without calling the platform (``force`` ignores backoff).
    """
    settings = settings or get_settings()
    clock = clock or time.time
    owner = owner or default_owner()
    try:
        source = get_source(source_key, settings.sources_file)
    except SourceConfigError as exc:
        log.error("harvest %s: unusable sources file: %s", source_key, exc)
        return HarvestSummary(source_key, "config_error", errors=[str(exc)])
    if source is None:
        return HarvestSummary(
            source_key, "unknown", errors=[f"no source {source_key!r} in {settings.sources_file}"]
        )
    if not source.enabled:
        return HarvestSummary(source_key, "disabled")

    def now() -> datetime:
        return utc_from_timestamp(clock())

    factory = session_factory()
    with factory() as session:
        if not acquire_lease(
            session=session, source_key=source_key, owner=owner, now=now(), seconds=source.lease_seconds
        ):
            session.rollback()
            return HarvestSummary(source_key, "locked")
        state = session.get(SourceState, source_key)
        assert state is not None
        if state.health == "stopped" and not force:
            release_lease(session=session, source_key=source_key, owner=owner)
            session.commit()
            return HarvestSummary(source_key, "stopped", errors=[state.last_error])
        backoff_until = aware(state.backoff_until)
        if backoff_until is not None and backoff_until > now() and not force:
            release_lease(session=session, source_key=source_key, owner=owner)
            session.commit()
            return HarvestSummary(
                source_key, "backoff", errors=[f"in backoff until {backoff_until.isoformat()}"]
            )
        # We hold the lease, so a run still marked running was left by a worker that died.
        session.execute(
            sa.update(HarvestRun)
            .where(HarvestRun.source_key == source_key, HarvestRun.status == "running")
            .values(status="abandoned", finished_at=now())
            .execution_options(synchronize_session=False)
        )
        run = HarvestRun(source_key=source_key, started_at=now(), status="running", errors=[])
        session.add(run)
        state.last_run_at = now()
        session.commit()
        summary = HarvestSummary(source_key, "running", run_id=run.id)
        waiter = Waiter(sleep=sleep or time.sleep, clock=clock, max_wait_seconds=source.max_wait_seconds)
        try:
            _collect(session, source, settings, waiter, run, summary, owner, now)
            prune_checkpoints(session=session, source=source, now=now())
            summary.status = "ok"
            state.health, state.last_success_at, state.backoff_until, state.last_error = "ok", now(), None, ""
        except RateLimited as exc:
            session.rollback()
            summary.status = "partial"
            summary.errors.append(str(exc))
            state.health, state.backoff_until = "backoff", exc.until
            state.last_error = mask_pii(str(exc))[:2000]
        except SourceAuthError as exc:
            session.rollback()
            summary.status = "failed"
            summary.errors.append(exc.reason)
            record_source_auth_error(
                session=session, source_key=source_key, error=exc, details={"run_id": run.id}
            )
        except LeaseLost as exc:
            session.rollback()
            summary.status = "failed"
            summary.errors.append(str(exc))
        except (TransientError, HarvestError) as exc:
            session.rollback()
            summary.status = "partial" if summary.pages else "failed"
            summary.errors.append(str(exc))
            retry_in = min(source.schedule_seconds, 300)
            state.health, state.backoff_until = "backoff", now() + timedelta(seconds=retry_in)
            state.last_error = mask_pii(str(exc))[:2000]
        finally:
            if summary.status == "running":  # an unexpected exception is propagating
                session.rollback()
                summary.status = "failed"
                state.health, state.last_error = "failing", "unexpected error; see worker log"
            run.status = summary.status
            run.finished_at = now()
            run.pages, run.fetched_count = summary.pages, summary.fetched
            run.new_count, run.updated_count = len(summary.new_post_ids), len(summary.updated_post_ids)
            run.duplicate_count, run.quarantined_count = summary.seen_again, summary.quarantined
            run.rate_limit_wait_seconds = summary.rate_limit_wait_seconds
            run.errors = [mask_pii(e)[:1000] for e in summary.errors][:100]
            release_lease(session=session, source_key=source_key, owner=owner)
            session.commit()
    log.info(
        "harvest %s: %s, %d new, %d updated, %d pages",
        source_key,
        summary.status,
        len(summary.new_post_ids),
        len(summary.updated_post_ids),
        summary.pages,
    )
    return summary


def record_source_auth_error(
    *, session: Session, source_key: str, error: SourceAuthError, details: dict[str, Any]
) -> None:
    """Mark the source stopped (token expired or revoked) or failing, and alert an admin once per
    change, not on every run or delivery that meets the same error. Does not commit."""
    ensure_state(session=session, source_key=source_key)
    state = session.get(SourceState, source_key)
    assert state is not None
    new_health = "stopped" if error.stop else "failing"
    # Platform error text can quote request content: stored and shown (/sumber) masked.
    reason = mask_pii(error.reason)
    if state.health != new_health or state.last_error != reason[:2000]:
        audit.record(
            session=session,
            actor=ACTOR,
            action="harvest.source_stopped" if error.stop else "harvest.source_failing",
            object_type="source",
            object_id=source_key,
            details={"reason": reason[:500], **details},
        )
    state.health = new_health
    state.last_error = reason[:2000]
    log.error("harvest source %s %s: %s", source_key, new_health, error.reason)


def _collect(
    session: Session,
    source: SourceConfig,
    settings: Settings,
    waiter: Waiter,
    run: HarvestRun,
    summary: HarvestSummary,
    owner: str,
    now: Callable[[], datetime],
) -> None:
    collector = build_collector(source, settings, waiter)
    checkpoints = load_checkpoints(session=session, source_key=source.key)
    session.commit()
    for event in collector.collect(checkpoints):
        if isinstance(event, Page):
            result: IngestResult = ingest_posts(
                session=session, source_key=source.key, items=event.items, run_id=run.id, settings=settings
            )
            summary.pages += 1
            summary.fetched += len(event.items)
            summary.new_post_ids += result.new_post_ids
            summary.updated_post_ids += result.updated_post_ids
            summary.seen_again += result.seen_again
            summary.near_duplicates += result.near_duplicates
            summary.quarantined += result.quarantined
            if not renew_lease(
                session=session, source_key=source.key, owner=owner, now=now(), seconds=source.lease_seconds
            ):
                raise LeaseLost(f"lease on {source.key} lost to another worker; page not stored")
            run.pages, run.new_count = summary.pages, len(summary.new_post_ids)
            session.commit()
        elif isinstance(event, CheckpointProposal):
            save_checkpoint(
                session=session, source_key=source.key, cursor=event.cursor, value=event.value, now=now()
            )
            session.commit()
        elif isinstance(event, Notice):
            if event.kind == "rate_limit_wait":
                summary.rate_limit_wait_seconds += event.seconds
            elif event.kind in ("gap", "warning"):
                log.warning("harvest %s: possible gap: %s", source.key, event.message)
                summary.errors.append(f"{event.kind}: {event.message}")


# -- webhooks ---------------------------------------------------------------------------------------


def ingest_webhook(*, payload: dict[str, Any], settings: Settings | None = None) -> IngestResult:
    """Fetch what a Meta webhook names (IG @mentions, Page feed changes) and store it.

    A change for a switched-off source is quarantined whole, with the reason, and not fetched.
    """
    from harvester.webhooks import parse_changes

    settings = settings or get_settings()
    total = IngestResult()
    factory = session_factory()
    for change in parse_changes(payload):
        platform = "instagram" if change.object == "instagram" else "facebook"
        from pipelines.sources import find_source_for_object

        source = find_source_for_object(platform, change.entry_id, settings.sources_file)
        source_key = source.key if source else f"webhook:{platform}"
        items: list[RawItem | QuarantinedItem]
        auth_error: SourceAuthError | None = None
        if source is not None and not source.enabled:
            # Switched off: nothing is fetched or stored as a post. An @mention can never be listed
            # later, so the notification is kept whole, with the reason, instead of dropped.
            items = [QuarantinedItem.of(platform, f"source {source.key} is switched off", change.as_dict())]
        else:
            try:
                items = change.fetch(_webhook_client(source=source, platform=platform, settings=settings))
            except SourceAuthError as exc:
                auth_error = exc
                items = [QuarantinedItem.of(platform, f"webhook fetch failed: {exc}", change.as_dict())]
        with factory() as session:
            total.merge(ingest_posts(session=session, source_key=source_key, items=items, settings=settings))
            if auth_error is not None and source is not None:
                # As a poll would: stop (or mark failing) the source and tell an admin.
                record_source_auth_error(
                    session=session, source_key=source.key, error=auth_error, details={"via": "webhook"}
                )
            elif auth_error is not None:
                log.error("webhook for unconfigured %s %s: %s", platform, change.entry_id, auth_error.reason)
            session.commit()
    return total


def _webhook_client(*, source: SourceConfig | None, platform: str, settings: Settings) -> GraphClient:
    """A Graph client with the token of the source a notification belongs to (else the platform's)."""
    token = (
        source.credential(settings)
        if source
        else (
            (settings.instagram_token if platform == "instagram" else settings.facebook_page_token)
            or None
        )
    )
    token_value = token if isinstance(token, str) else (token.get_secret_value() if token else "")
    return GraphClient(
        token=token_value,
        base_url=settings.graph_api_base,
        version=settings.graph_api_version,
        timeout=settings.http_timeout_seconds,
        waiter=Waiter(max_wait_seconds=5, max_retries=2, backoff_base_seconds=0.5),
    )


# -- dispatch --------------------------------------------------------------------------------------


def claim_due_sources(*, session: Session, sources: list[SourceConfig], now: datetime) -> list[SourceConfig]:
    """The enabled sources due for a run at ``now``, each marked queued. Does not commit.

    A source is due when its last run started ``schedule_seconds`` ago or more (or it never ran), no
    run of it holds the lease, it is neither in backoff nor stopped, and it has not been queued since
    that run within the last ``schedule_seconds``: a run still waiting for a busy worker is not queued
    twice, one whose message was lost is queued again when the interval has passed. Each claim is one
    conditional UPDATE, so two dispatchers never queue the same run.
    """
    due = []
    for source in sources:
        if not source.enabled:
            continue
        ensure_state(session=session, source_key=source.key)
        cutoff = now - timedelta(seconds=source.schedule_seconds)
        claimed = session.execute(
            sa.update(SourceState)
            .where(
                SourceState.source_key == source.key,
                sa.or_(SourceState.last_run_at.is_(None), SourceState.last_run_at <= cutoff),
                sa.or_(
                    SourceState.queued_at.is_(None),
                    SourceState.queued_at <= cutoff,
                    SourceState.queued_at <= SourceState.last_run_at,
                ),
                lease_is_free(now),
                SourceState.health != "stopped",
                sa.or_(SourceState.backoff_until.is_(None), SourceState.backoff_until <= now),
            )
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            due.append(source)
    return due


# -- monitoring -------------------------------------------------------------------------------------


def source_status(*, session: Session, sources: list[SourceConfig]) -> list[dict[str, Any]]:
    """Health, last success, backoff and the last run's counts of each configured source."""
    states = {s.source_key: s for s in session.scalars(sa.select(SourceState))}
    rows = []
    for source in sources:
        state = states.get(source.key)
        last = session.scalars(
            sa.select(HarvestRun)
            .where(HarvestRun.source_key == source.key)
            .order_by(HarvestRun.id.desc())
            .limit(1)
        ).first()
        rows.append(
            {
                "key": source.key,
                "platform": source.platform,
                "enabled": source.enabled,
                "health": (state.health if state else "never run") if source.enabled else "disabled",
                "last_success_at": aware(state.last_success_at) if state else None,
                "backoff_until": aware(state.backoff_until) if state else None,
                "last_error": state.last_error if state else "",
                "running": bool(state and state.lease_owner),
                "last_run_at": aware(last.started_at) if last else None,
                "last_run_status": last.status if last else None,
                "new": last.new_count if last else 0,
                "updated": last.updated_count if last else 0,
                "duplicate": last.duplicate_count if last else 0,
                "quarantined": last.quarantined_count if last else 0,
                "rate_limit_wait_seconds": last.rate_limit_wait_seconds if last else 0.0,
                # What the last run noted (a gap, a rate-limit wait, the 800-mention limit): already
                # masked when stored; the error the source is failing with is shown apart.
                "notes": [e for e in (last.errors or []) if e != (state.last_error if state else "")][:5]
                if last
                else [],
            }
        )
    return rows


def reset_health(*, session: Session, source_key: str, enabled: bool, actor: str) -> None:
    """After an admin switches a source on/off: clear a stop/backoff (on enable) and audit it. Does not commit."""
    ensure_state(session=session, source_key=source_key)
    if enabled:
        session.execute(
            sa.update(SourceState)
            .where(SourceState.source_key == source_key)
            .values(health="ok", backoff_until=None, last_error="")
            .execution_options(synchronize_session=False)
        )
    audit.record(
        session=session,
        actor=actor,
        action="source.enabled" if enabled else "source.disabled",
        object_type="source",
        object_id=source_key,
    )
