"""The LAPOR! outbox: every complaint reaches LAPOR! exactly once, through one state machine.

``enqueue`` writes the outbox row in the caller's transaction, together with the decision to forward.
``deliver`` then moves an item through its states (``OutboxState``)::

    pending ──claim──▶ sending ──tracking id──▶ sent
       ▲                 │ ├──timeout / 5xx──▶ unknown ──claim, look up first──▶ …
       └──refused/down───┘ └──4xx──▶ dead ──fix and retry──▶ pending / unknown

Why it cannot send twice:

- A worker *claims* an item with a conditional UPDATE (compare-and-set on state and attempt count)
  and commits before any network call; exactly one worker wins, on SQLite and PostgreSQL alike, on
  any number of machines. The claim is a lease: a worker killed mid-send is taken over once it runs out.
- Every request carries the item's idempotency key (also sent as the external reference).
- Any item that was attempted before (a lost claim, a timeout, a 5xx) is first looked up in LAPOR! by
  that key; only if LAPOR! does not have it is it sent again.

Why it cannot lose one: the row is committed with the decision; failures put it back with a backoff
time (exponential, jittered); the beat sweep re-schedules everything due or stale. Delivery raises
:class:`DeliveryDeferred` on a retryable failure so the Celery task retries instead of swallowing it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring.settings import Settings, get_settings
from pipelines import audit
from pipelines.complaints import BODY_MAX, BODY_MIN, TITLE_MAX, TITLE_MIN
from pipelines.forward_policy import DeliveryConfig, load_forward_config
from pipelines.lapor import (
    APISender,
    LaporError,
    LaporPermanentError,
    LaporUnknownOutcome,
    ManualSender,
    Sender,
    Submission,
    make_sender,
)
from pipelines.models import (
    Complaint,
    ComplaintStatusEvent,
    ForwardAttempt,
    OutboxItem,
    OutboxState,
    Post,
    PostStatus,
    utcnow,
)

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:forwarder"
CLAIMABLE = (OutboxState.PENDING.value, OutboxState.UNKNOWN.value, OutboxState.SENDING.value)
OPEN_STATES = CLAIMABLE + (OutboxState.AWAITING_MANUAL.value,)
# An admin may paste a tracking id for an item in these states (or one whose worker's claim lapsed).
MANUAL_ENTRY_STATES = (
    OutboxState.PENDING.value, OutboxState.UNKNOWN.value, OutboxState.AWAITING_MANUAL.value, OutboxState.DEAD.value,
)
EDITABLE_FIELDS = (
    "title",
    "body",
    "category",
    "instansi",
    "opd",
    "location_text",
    "kecamatan",
    "kelurahan",
    "anonymous",
    "confidential",
)
TRACKING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_/]{0,63}$")
_rng = random.Random()
_rng_lock = threading.Lock()


class DeliveryDeferred(Exception):
    """A retryable delivery failure: the item is stored with its next attempt time; retry after ``countdown``."""

    def __init__(self, message: str, *, countdown: float) -> None:
        super().__init__(message)
        self.countdown = countdown


class OutboxError(Exception):
    """An outbox action a person asked for cannot be done (message in Bahasa Indonesia)."""


@dataclass(frozen=True)
class DeliveryResult:
    """What one ``deliver`` call did."""

    outbox_id: int
    outcome: str  # sent | dead | retry | unknown | skipped | manual | held
    tracking_id: str | None = None
    error: str = ""
    complaint_id: int | None = None


def new_idempotency_key() -> str:
    """A fresh key, sent with every request for this item and used to look it up after an unknown outcome."""
    return f"jaring-{uuid.uuid4().hex}"


def worker_identity() -> str:
    """A claim owner unique to this call (host, process, thread, random)."""
    ident = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
    return ident[-200:]


def backoff_seconds(attempt: int, config: DeliveryConfig, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter for the ``attempt``-th try: between c/2 and c, c capped."""
    ceiling = min(config.backoff_max_seconds, config.backoff_base_seconds * (2 ** max(0, attempt - 1)))
    if rng is None:
        with _rng_lock:
            jitter = _rng.random()
    else:
        jitter = rng.random()
    return ceiling / 2 + jitter * ceiling / 2


# --- Enqueue ------------------------------------------------------------------------------------


def enqueue(
    *, session: Session, complaint: Complaint, actor: str, settings: Settings | None = None
) -> OutboxItem:
    """Put ``complaint`` in the outbox in the caller's transaction (does not commit); audit-logged.

    Idempotent per complaint: a complaint already in the outbox returns its existing item.
    """
    settings = settings or get_settings()
    if complaint.id is None:
        session.add(complaint)
        session.flush()
    existing = session.scalar(sa.select(OutboxItem).where(OutboxItem.complaint_id == complaint.id))
    if existing is not None:
        return existing
    manual = settings.lapor_sender == "manual"
    now = utcnow()
    item = OutboxItem(
        complaint_id=complaint.id,
        idempotency_key=new_idempotency_key(),
        sender=settings.lapor_sender,
        state=OutboxState.AWAITING_MANUAL.value if manual else OutboxState.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="outbox.enqueue",
        object_type="complaint",
        object_id=complaint.id,
        details={"outbox_id": item.id, "sender": item.sender, "post_id": complaint.post_id},
    )
    return item


# --- Claiming -----------------------------------------------------------------------------------


def _claimable_clause(now: datetime) -> Any:
    return sa.or_(
        sa.and_(
            OutboxItem.state.in_((OutboxState.PENDING.value, OutboxState.UNKNOWN.value)),
            OutboxItem.next_attempt_at <= now,
        ),
        sa.and_(OutboxItem.state == OutboxState.SENDING.value, OutboxItem.claimed_until < now),
    )


def _automatic() -> Any:
    """SQL, correlated to the outbox row: its complaint was made by the auto-forward policy, not a reviewer."""
    return sa.exists().where(Complaint.id == OutboxItem.complaint_id, Complaint.auto.is_(True))


def due_ids(*, session: Session, limit: int = 500, now: datetime | None = None) -> list[int]:
    """Ids of items a worker should deliver now: due retries and claims whose lease ran out.

    While the auto-forward kill switch is off, automatic complaints are not due (see ``deliver``).
    """
    now = now or utcnow()
    query = sa.select(OutboxItem.id).where(_claimable_clause(now))
    if not load_forward_config().auto_forward.enabled:
        query = query.where(~_automatic())
    return list(session.scalars(query.order_by(OutboxItem.next_attempt_at).limit(limit)))


@dataclass(frozen=True)
class _Claim:
    outbox_id: int
    complaint_id: int
    idempotency_key: str
    sender: str
    attempt: int  # attempts after this claim (1 = first try)
    started_at: datetime
    uncertain: bool  # an earlier attempt may have reached LAPOR!: look it up before sending
    complaint: Complaint | None = None  # detached copy, loaded with the claim


def _claim(session: Session, *, outbox_id: int, worker: str, lease: float) -> _Claim | None:
    """Take the item if it is due, in one conditional UPDATE; commits. ``None`` if someone else has it.

    Only one of any number of concurrent workers matches the WHERE clause: PostgreSQL re-checks it on
    the locked row after the winner commits; SQLite serialises writers.
    """
    now = utcnow()
    row = session.execute(
        sa.update(OutboxItem)
        .where(OutboxItem.id == outbox_id, _claimable_clause(now))
        .values(
            state=OutboxState.SENDING.value,
            attempts=OutboxItem.attempts + 1,
            claimed_by=worker,
            claimed_until=now + timedelta(seconds=lease),
            updated_at=now,
        )
        .returning(OutboxItem.complaint_id, OutboxItem.idempotency_key, OutboxItem.sender, OutboxItem.attempts)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        session.rollback()
        return None
    complaint = session.get(Complaint, row.complaint_id)
    if complaint is not None:
        session.expunge(complaint)
    session.commit()
    # Every earlier attempt (a timeout, a 5xx, a worker that died mid-request) may have reached
    # LAPOR!; retry_dead() keeps the count above zero for items whose earlier outcome is unknown.
    return _Claim(
        outbox_id=outbox_id,
        complaint_id=row.complaint_id,
        idempotency_key=row.idempotency_key,
        sender=row.sender,
        attempt=row.attempts,
        started_at=now,
        uncertain=row.attempts > 1,
        complaint=complaint,
    )


# --- Delivery -----------------------------------------------------------------------------------

_senders: dict[tuple[Any, ...], Sender] = {}
_senders_lock = threading.Lock()


def cached_sender(settings: Settings) -> Sender:
    """One sender (and HTTP connection pool) per process and configuration."""
    config = load_forward_config(settings.forward_policy_file)
    token = settings.lapor_api_token.get_secret_value() if settings.lapor_api_token else ""
    key = (settings.lapor_sender, settings.lapor_api_base, hash(token), config.lapor_api.model_dump_json(),
           settings.http_timeout_seconds)
    with _senders_lock:
        sender = _senders.get(key)
        if sender is None:
            sender = make_sender(settings)
            _senders[key] = sender
        return sender


def close_senders() -> None:
    """Close every cached sender's connection pool (tests, worker shutdown)."""
    with _senders_lock:
        senders = list(_senders.values())
        _senders.clear()
    for sender in senders:
        close = getattr(sender, "close", None)
        if close is not None:
            close()


@contextlib.contextmanager
def _delivery_session(factory: Callable[[], Session] | None) -> Iterator[Session]:
    """One session on one pooled connection for the whole delivery (its two short transactions)."""
    if factory is not None:
        with factory() as session:
            yield session
        return
    from jaring.db import get_engine

    with get_engine().connect() as connection, Session(bind=connection, expire_on_commit=False) as session:
        yield session


def deliver(
    *,
    outbox_id: int,
    worker: str | None = None,
    settings: Settings | None = None,
    sender: Sender | None = None,
    factory: Callable[[], Session] | None = None,
) -> DeliveryResult:
    """Try to deliver one outbox item now; safe to call from any number of workers at once.

    Returns the outcome; raises :class:`DeliveryDeferred` when the item must be retried later (its
    next attempt time is stored, so the sweep also finds it) and re-raises unexpected errors (the
    claim then lapses and the item is looked up before being sent again).
    """
    settings = settings or get_settings()
    forward_config = load_forward_config(settings.forward_policy_file)
    config = forward_config.delivery
    worker = worker or worker_identity()
    with _delivery_session(factory) as session:
        if not forward_config.auto_forward.enabled:
            # Kill switch: nothing reaches LAPOR! without a reviewer, including automatic complaints
            # queued before it was thrown. They wait, unclaimed, until auto-forward is switched back on.
            held = session.scalar(sa.select(OutboxItem.id).where(OutboxItem.id == outbox_id, _automatic())) is not None
            session.rollback()
            if held:
                return DeliveryResult(outbox_id=outbox_id, outcome="held")
        # The lease must outlast a lookup plus a submission, or a slow worker would be taken over mid-send.
        lease = max(config.lease_seconds, 3 * settings.http_timeout_seconds)
        claim = _claim(session, outbox_id=outbox_id, worker=worker, lease=lease)
        if claim is None:
            return DeliveryResult(outbox_id=outbox_id, outcome="skipped")
        sender = sender or cached_sender(settings)
        if sender.manual or settings.lapor_sender == "manual":
            return _park_for_manual_entry(session, claim, worker)
        complaint = claim.complaint
        if complaint is None:  # pragma: no cover - the foreign key prevents it
            raise RuntimeError(f"outbox item {outbox_id} has no complaint")

        uncertain = claim.uncertain
        try:
            submission: Submission | None = None
            if uncertain:
                submission = sender.find(idempotency_key=claim.idempotency_key)
                uncertain = False  # LAPOR! answered: it has it (submission) or it does not
            if submission is None:
                submission = sender.submit(complaint, idempotency_key=claim.idempotency_key)
        except LaporPermanentError as exc:
            return _fail(session, claim, worker, exc, config=config, permanent=True, uncertain=uncertain)
        except LaporError as exc:
            uncertain = uncertain or isinstance(exc, LaporUnknownOutcome)
            return _fail(session, claim, worker, exc, config=config, permanent=False, uncertain=uncertain)
        return _succeed(session, claim, submission, source="sender", actor=SYSTEM_ACTOR)


def _finish_attempt(session: Session, claim: _Claim, *, outcome: str, error: str = "", status: int | None = None) -> None:
    # An attempt whose worker died leaves no row: the item's attempt count then exceeds its rows.
    session.add(ForwardAttempt(outbox_id=claim.outbox_id, started_at=claim.started_at, finished_at=utcnow(),
                               outcome=outcome, error=error[:2000], http_status=status))


def _park_for_manual_entry(session: Session, claim: _Claim, worker: str) -> DeliveryResult:
    session.execute(
        sa.update(OutboxItem)
        .where(OutboxItem.id == claim.outbox_id, OutboxItem.claimed_by == worker)
        .values(
            state=OutboxState.AWAITING_MANUAL.value, sender="manual", claimed_by="", claimed_until=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    _finish_attempt(session, claim, outcome="manual")
    session.commit()
    return DeliveryResult(outbox_id=claim.outbox_id, outcome="manual", complaint_id=claim.complaint_id)


def _fail(
    session: Session,
    claim: _Claim,
    worker: str,
    exc: LaporError,
    *,
    config: DeliveryConfig,
    permanent: bool,
    uncertain: bool,
) -> DeliveryResult:
    now = utcnow()
    error = str(exc)[:2000]
    give_up = permanent or claim.attempt >= config.max_attempts
    if give_up:
        state = OutboxState.DEAD.value
        if not permanent:
            error = f"menyerah setelah {claim.attempt} percobaan: {error}"
        countdown = 0.0
    else:
        state = OutboxState.UNKNOWN.value if uncertain else OutboxState.PENDING.value
        countdown = backoff_seconds(claim.attempt, config)
    result = session.execute(
        sa.update(OutboxItem)
        .where(
            OutboxItem.id == claim.outbox_id,
            OutboxItem.claimed_by == worker,
            OutboxItem.state == OutboxState.SENDING.value,
        )
        .values(
            state=state,
            claimed_by="",
            claimed_until=None,
            last_error=error,
            next_attempt_at=now + timedelta(seconds=countdown),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    # "unknown" whenever LAPOR! may hold the report after this attempt (the request's outcome was lost, or
    # the lookup that should have settled an earlier one failed), dead or not: retry_dead() reads it,
    # because after a reset the attempt count no longer reveals a worker that died mid-send.
    outcome = "unknown" if uncertain else ("dead" if give_up else "retry")
    _finish_attempt(session, claim, outcome=outcome, error=error, status=exc.http_status)
    if give_up and result.rowcount == 1:  # type: ignore[attr-defined]
        audit.record(
            session=session,
            actor=SYSTEM_ACTOR,
            action="outbox.dead",
            object_type="complaint",
            object_id=claim.complaint_id,
            details={"outbox_id": claim.outbox_id, "reason": error[:500], "attempts": claim.attempt},
        )
    session.commit()
    if give_up:
        return DeliveryResult(claim.outbox_id, "dead", error=error, complaint_id=claim.complaint_id)
    raise DeliveryDeferred(f"outbox {claim.outbox_id}: {error}", countdown=countdown)


def _succeed(
    session: Session, claim: _Claim | None, submission: Submission, *, source: str, actor: str,
    outbox_id: int | None = None, complaint_id: int | None = None, only_if: Any = None,
) -> DeliveryResult:
    outbox_id = claim.outbox_id if claim else outbox_id
    complaint_id = claim.complaint_id if claim else complaint_id
    assert outbox_id is not None and complaint_id is not None
    if claim is not None and claim.complaint is not None:
        post_id = claim.complaint.post_id
    else:
        post_id = session.scalar(sa.select(Complaint.post_id).where(Complaint.id == complaint_id))
    now = utcnow()
    result = session.execute(
        sa.update(OutboxItem)
        .where(OutboxItem.id == outbox_id, OutboxItem.state != OutboxState.SENT.value)
        .where(only_if if only_if is not None else sa.true())
        .values(
            state=OutboxState.SENT.value, claimed_by="", claimed_until=None, last_error="", sent_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if only_if is not None and result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()  # a person's action: refuse it and say why, instead of recording a clash
        raise _manual_entry_refusal(session, outbox_id=outbox_id, complaint_id=complaint_id,
                                    tracking_id=submission.tracking_id)
    if claim is not None:
        _finish_attempt(session, claim, outcome="sent")
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Someone else stored the outcome first. Same tracking id: nothing to do. Different: LAPOR!
        # holds two reports for one key, which the lookup-before-resend exists to prevent; say so loudly.
        kept = session.scalar(sa.select(Complaint.tracking_id).where(Complaint.id == complaint_id))
        if kept != submission.tracking_id:
            log.error("outbox %s: LAPOR! returned a second tracking id", outbox_id)
            audit.record(
                session=session, actor=actor, action="outbox.duplicate_detected", object_type="complaint",
                object_id=complaint_id, details={"kept": kept, "extra": submission.tracking_id},
            )
        session.commit()
        return DeliveryResult(outbox_id, "skipped", tracking_id=kept, complaint_id=complaint_id)
    status = submission.status or "Belum Terverifikasi"
    session.execute(
        sa.update(Complaint)
        .where(Complaint.id == complaint_id)
        .values(tracking_id=submission.tracking_id, lapor_status=status, forwarded_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add(ComplaintStatusEvent(complaint_id=complaint_id, status=status, changed_at=now, source=source))
    if post_id is not None:
        session.execute(
            sa.update(Post)
            .where(Post.id == post_id)
            .values(status=PostStatus.FORWARDED.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    audit.record(
        session=session, actor=actor, action="outbox.sent", object_type="complaint", object_id=complaint_id,
        details={"outbox_id": outbox_id, "tracking_id": submission.tracking_id, "via": source},
    )
    session.commit()
    return DeliveryResult(outbox_id, "sent", tracking_id=submission.tracking_id, complaint_id=complaint_id)


# --- People's actions ---------------------------------------------------------------------------


def _manual_entry_allowed(now: datetime) -> Any:
    """SQL: the item is not sent and no worker holds a live claim on it, so a pasted tracking id may close it."""
    return sa.or_(
        OutboxItem.state.in_(MANUAL_ENTRY_STATES),
        sa.and_(OutboxItem.state == OutboxState.SENDING.value, OutboxItem.claimed_until < now),
    )


def record_manual_entry(
    *, session: Session, complaint_id: int, tracking_id: str, actor: str, status: str | None = None
) -> DeliveryResult:
    """An admin typed the complaint into LAPOR! and pastes back its tracking id (commits).

    Marking the item sent is one conditional UPDATE: an item still queued for the API sender can be
    claimed by a worker at any moment, and then the worker's send stands and the pasted id is refused.
    """
    tracking_id = (tracking_id or "").strip()
    if not TRACKING_ID.match(tracking_id):
        raise OutboxError("Nomor pelacakan tidak valid (huruf/angka, maksimal 64 karakter).")
    clash = session.scalar(
        sa.select(Complaint.id).where(Complaint.tracking_id == tracking_id, Complaint.id != complaint_id)
    )
    if clash is not None:
        raise OutboxError(f"Nomor pelacakan {tracking_id} sudah dipakai aduan #{clash}.")
    outbox_id = session.scalar(sa.select(OutboxItem.id).where(OutboxItem.complaint_id == complaint_id))
    if outbox_id is None:
        raise OutboxError(f"Aduan #{complaint_id} tidak ada di antrean kirim.")
    return _succeed(
        session, None, Submission(tracking_id=tracking_id, status=status), source="manual", actor=actor,
        outbox_id=outbox_id, complaint_id=complaint_id, only_if=_manual_entry_allowed(utcnow()),
    )


def _manual_entry_refusal(session: Session, *, outbox_id: int, complaint_id: int, tracking_id: str) -> OutboxError:
    """Why a pasted tracking id was not stored, read after the conditional UPDATE matched nothing."""
    state = session.scalar(sa.select(OutboxItem.state).where(OutboxItem.id == outbox_id))
    if state == OutboxState.SENT.value:
        return OutboxError(f"Aduan #{complaint_id} sudah tercatat terkirim.")
    return OutboxError(
        f"Aduan #{complaint_id} sedang dikirim otomatis ke LAPOR! oleh pengirim API, jadi nomor pelacakan "
        f"{tracking_id} tidak dicatat. Periksa lagi dalam beberapa menit: bila pengiriman otomatis berhasil, "
        "laporan yang Anda ketik di LAPOR! adalah duplikat."
    )


def retry_dead(
    *, session: Session, outbox_id: int, actor: str, changes: dict[str, Any] | None = None
) -> OutboxItem:
    """Fix a dead-letter complaint (optional field changes) and put it back in the queue (commits)."""
    item = session.get(OutboxItem, outbox_id, populate_existing=True)
    if item is None:
        raise OutboxError(f"Item antrean #{outbox_id} tidak ditemukan.")
    if item.state != OutboxState.DEAD.value:
        raise OutboxError(f"Item antrean #{outbox_id} tidak berstatus gagal (status: {item.state}).")
    complaint = session.get(Complaint, item.complaint_id, populate_existing=True)
    assert complaint is not None
    changed = []
    try:
        for name, value in (changes or {}).items():
            if name not in EDITABLE_FIELDS:
                raise OutboxError(f"Kolom {name} tidak bisa diubah di sini.")
            if getattr(complaint, name) != value:
                setattr(complaint, name, value)
                changed.append(name)
        if not (complaint.title or "").strip() or not (complaint.body or "").strip():
            raise OutboxError("Judul dan isi laporan wajib diisi.")
        # A corrected judul or isi obeys the composer's limits; an untouched one stays as it was made.
        if "title" in changed and not TITLE_MIN <= len(complaint.title) <= TITLE_MAX:
            raise OutboxError(f"Judul harus {TITLE_MIN}–{TITLE_MAX} karakter.")
        if "body" in changed and not BODY_MIN <= len(complaint.body) <= BODY_MAX:
            raise OutboxError(f"Isi harus {BODY_MIN}–{BODY_MAX} karakter.")
    except OutboxError:
        # Undo the edits made so far: a caller retrying several items on one session (``outbox retry
        # --all-dead``) would otherwise save them, unaudited, with the next item's commit.
        session.rollback()
        raise
    # Unknown if any attempt's outcome was unknown, or an attempt left no row (its worker died mid-send).
    uncertain = item.id in uncertain_api_attempts(session=session, outbox_ids=[item.id])
    now = utcnow()
    manual = item.sender == "manual"
    result = session.execute(
        sa.update(OutboxItem)
        .where(OutboxItem.id == item.id, OutboxItem.state == OutboxState.DEAD.value)
        .values(
            state=(
                OutboxState.AWAITING_MANUAL.value if manual
                else OutboxState.UNKNOWN.value if uncertain else OutboxState.PENDING.value
            ),
            attempts=1 if uncertain else 0,  # > 0 makes the next claim look LAPOR! up before sending
            next_attempt_at=now,
            claimed_by="",
            claimed_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise OutboxError(f"Item antrean #{outbox_id} baru saja diubah orang lain.")
    audit.record(
        session=session, actor=actor, action="outbox.retry", object_type="complaint", object_id=complaint.id,
        details={"outbox_id": item.id, "changed_fields": changed, "previous_error": (item.last_error or "")[:500]},
    )
    session.commit()
    session.refresh(item)
    return item


def send_manual_items_via_api(*, session: Session, actor: str, limit: int = 10_000) -> list[int]:
    """After switching a deployment to the API sender: move items waiting for manual entry to the queue (commits)."""
    ids = list(session.scalars(
        sa.select(OutboxItem.id).where(OutboxItem.state == OutboxState.AWAITING_MANUAL.value).limit(limit)
    ))
    if not ids:
        return []
    now = utcnow()
    session.execute(
        sa.update(OutboxItem)
        .where(OutboxItem.id.in_(ids), OutboxItem.state == OutboxState.AWAITING_MANUAL.value)
        .values(state=OutboxState.PENDING.value, sender="api", next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(session=session, actor=actor, action="outbox.manual_to_api", object_type="outbox",
                 object_id="", details={"outbox_ids": ids[:1000], "count": len(ids)})
    session.commit()
    return ids


# --- Queries for the web app and the CLI --------------------------------------------------------


def list_items(
    *, session: Session, states: tuple[str, ...] | None = None, limit: int = 100, before_id: int | None = None
) -> list[tuple[OutboxItem, Complaint]]:
    """Outbox items with their complaints, newest first (keyset pagination on id)."""
    query = sa.select(OutboxItem, Complaint).join(Complaint, Complaint.id == OutboxItem.complaint_id)
    if states:
        query = query.where(OutboxItem.state.in_(states))
    if before_id is not None:
        query = query.where(OutboxItem.id < before_id)
    rows = session.execute(query.order_by(OutboxItem.id.desc()).limit(limit)).all()
    return [(row[0], row[1]) for row in rows]


def counts_by_state(*, session: Session) -> dict[str, int]:
    """How many outbox items are in each state."""
    rows = session.execute(sa.select(OutboxItem.state, sa.func.count()).group_by(OutboxItem.state)).all()
    return {state: int(count) for state, count in rows}


def attempts_of(*, session: Session, outbox_id: int) -> list[ForwardAttempt]:
    """Every delivery attempt of one item, oldest first."""
    return list(
        session.scalars(sa.select(ForwardAttempt).where(ForwardAttempt.outbox_id == outbox_id).order_by(ForwardAttempt.id))
    )


def uncertain_api_attempts(*, session: Session, outbox_ids: list[int]) -> dict[int, datetime | None]:
    """Items among ``outbox_ids`` that LAPOR! may already hold, with when their last uncertain attempt began.

    An attempt is uncertain when its outcome was lost (recorded as ``unknown``) or it left no row (its
    worker stopped mid-send; its time is then not known: ``None``). After a switch to the manual sender
    such an item waits for an admin who must check LAPOR! before typing it in again.
    """
    if not outbox_ids:
        return {}
    attempts = {
        outbox_id: count
        for outbox_id, count in session.execute(
            sa.select(OutboxItem.id, OutboxItem.attempts).where(OutboxItem.id.in_(outbox_ids))
        )
    }
    rows = session.execute(
        sa.select(ForwardAttempt.outbox_id, ForwardAttempt.outcome, ForwardAttempt.started_at)
        .where(ForwardAttempt.outbox_id.in_(outbox_ids))
    ).all()
    recorded: dict[int, int] = {}
    uncertain: dict[int, datetime | None] = {}
    for outbox_id, outcome, started_at in rows:
        recorded[outbox_id] = recorded.get(outbox_id, 0) + 1
        if outcome == "unknown":
            earlier = uncertain.get(outbox_id)
            uncertain[outbox_id] = started_at if earlier is None else max(earlier, started_at)
    for outbox_id, count in attempts.items():
        if outbox_id not in uncertain and count > recorded.get(outbox_id, 0):
            uncertain[outbox_id] = None
    return uncertain


__all__ = [
    "APISender",
    "DeliveryDeferred",
    "DeliveryResult",
    "ManualSender",
    "OutboxError",
    "attempts_of",
    "counts_by_state",
    "deliver",
    "due_ids",
    "enqueue",
    "list_items",
    "record_manual_entry",
    "retry_dead",
    "uncertain_api_attempts",
]
