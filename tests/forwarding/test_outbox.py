"""Outbox delivery against the LAPOR! stand-in over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring import db as jaring_db
from jaring.settings import get_settings
from pipelines import outbox
from pipelines.models import (
    AuditLog,
    Complaint,
    ComplaintStatusEvent,
    ForwardAttempt,
    OutboxItem,
    OutboxState,
    Post,
)
from tests.forwarding.conftest import ForwardEnv, add_complaint, item, queue_complaints, states


def drain(ids: list[int], *, threads: int = 1, timeout: float = 60.0) -> None:
    """Deliver until every item is sent or dead, like a pool of workers polling the sweep."""
    deadline = time.monotonic() + timeout

    def one(outbox_id: int) -> None:
        with contextlib.suppress(outbox.DeliveryDeferred):
            outbox.deliver(outbox_id=outbox_id)

    factory = jaring_db.session_factory()
    with ThreadPoolExecutor(threads) as pool:
        while True:
            with factory() as session:
                remaining = session.scalar(
                    sa.select(sa.func.count()).select_from(OutboxItem).where(
                        OutboxItem.id.in_(ids),
                        OutboxItem.state.not_in((OutboxState.SENT.value, OutboxState.DEAD.value)),
                    )
                )
                due = outbox.due_ids(session=session, limit=1000)
            if not remaining:
                return
            assert time.monotonic() < deadline, f"{remaining} items still undelivered"
            list(pool.map(one, due))
            time.sleep(0.05)


def test_enqueue_is_part_of_the_callers_transaction(forward_env: ForwardEnv, session: Session) -> None:
    complaint = add_complaint(session)
    outbox.enqueue(session=session, complaint=complaint, actor="rina")
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == 0

    complaint = add_complaint(session)
    first = outbox.enqueue(session=session, complaint=complaint, actor="rina")
    again = outbox.enqueue(session=session, complaint=complaint, actor="rina")
    session.commit()
    assert first.id == again.id
    assert first.state == OutboxState.PENDING.value and first.idempotency_key.startswith("jaring-")
    entry = session.scalars(sa.select(AuditLog).where(AuditLog.action == "outbox.enqueue")).one()
    assert entry.actor == "rina" and entry.object_id == str(complaint.id)


def test_delivery_maps_fields_and_stores_the_tracking_id(forward_env: ForwardEnv, session: Session) -> None:
    [outbox_id] = queue_complaints(session, 1)
    result = outbox.deliver(outbox_id=outbox_id)
    assert result.outcome == "sent" and result.tracking_id

    [report] = forward_env.state.reports.values()
    row = item(session, outbox_id)
    assert report.external_ref == row.idempotency_key
    assert report.fields["judul"] == "Keluhan nomor 0"
    assert report.fields["instansi_tujuan"] == "Dinas PUPR Kota Kupang"
    assert report.fields["rahasia"] is True and report.fields["anonim"] is False
    assert "Kec. Oebobo" in report.fields["lokasi"]

    complaint = session.get(Complaint, row.complaint_id)
    assert complaint is not None and complaint.tracking_id == report.tracking_id
    assert complaint.lapor_status == "Belum Terverifikasi" and complaint.forwarded_at is not None
    assert session.get(Post, complaint.post_id).status == "forwarded"  # type: ignore[union-attr]
    assert row.state == OutboxState.SENT.value and row.claimed_by == ""
    assert [a.outcome for a in outbox.attempts_of(session=session, outbox_id=outbox_id)] == ["sent"]
    assert session.scalar(sa.select(ComplaintStatusEvent.status)) == "Belum Terverifikasi"
    # Delivering again does nothing: the item is no longer claimable.
    assert outbox.deliver(outbox_id=outbox_id).outcome == "skipped"
    assert forward_env.state.submit_requests == 1


def test_validation_error_goes_to_dead_letters_and_fix_and_retry_sends_it(
    forward_env: ForwardEnv, session: Session
) -> None:
    complaint = add_complaint(session, title="   ")  # LAPOR! requires a judul
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()

    result = outbox.deliver(outbox_id=outbox_id)
    assert result.outcome == "dead" and "422" in result.error
    row = item(session, outbox_id)
    assert row.state == OutboxState.DEAD.value and "judul" in row.last_error
    # Not retried: neither a direct call nor the sweep touches a dead item.
    assert outbox.deliver(outbox_id=outbox_id).outcome == "skipped"
    assert outbox.due_ids(session=session) == []
    assert forward_env.state.requests == 1 and not forward_env.state.reports

    with pytest.raises(outbox.OutboxError):
        outbox.retry_dead(session=session, outbox_id=outbox_id, actor="admin", changes={"tracking_id": "x"})
    session.rollback()
    outbox.retry_dead(session=session, outbox_id=outbox_id, actor="admin",
                      changes={"title": "Jalan rusak di Oebobo"})
    assert item(session, outbox_id).state == OutboxState.PENDING.value
    assert outbox.deliver(outbox_id=outbox_id).outcome == "sent"
    [report] = forward_env.state.reports.values()
    assert report.fields["judul"] == "Jalan rusak di Oebobo"
    actions = session.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["outbox.enqueue", "outbox.dead", "outbox.retry", "outbox.sent"]


def test_bad_token_is_permanent(forward_env: ForwardEnv, session: Session) -> None:
    forward_env.state.token = "rotated"
    [outbox_id] = queue_complaints(session, 1)
    result = outbox.deliver(outbox_id=outbox_id)
    assert result.outcome == "dead" and "401" in result.error


@pytest.mark.parametrize("honour_idempotency", [True, False])
def test_timeout_whose_request_succeeded_is_not_sent_twice(
    forward_env: ForwardEnv, session: Session, honour_idempotency: bool
) -> None:
    forward_env.state.honour_idempotency = honour_idempotency
    forward_env.state.timeout_rate = 1.0  # store, then answer too late
    [outbox_id] = queue_complaints(session, 1)

    with pytest.raises(outbox.DeliveryDeferred):
        outbox.deliver(outbox_id=outbox_id)
    row = item(session, outbox_id)
    assert row.state == OutboxState.UNKNOWN.value and "tepat waktu" in row.last_error
    assert len(forward_env.state.reports) == 1

    forward_env.state.reset_faults()
    time.sleep(0.25)  # past the backoff
    result = outbox.deliver(outbox_id=outbox_id)
    assert result.outcome == "sent"
    [report] = forward_env.state.reports.values()
    assert result.tracking_id == report.tracking_id
    assert forward_env.state.submit_requests == 1  # found by the lookup, not sent again
    outcomes = [a.outcome for a in outbox.attempts_of(session=session, outbox_id=outbox_id)]
    assert outcomes == ["unknown", "sent"]


def test_lapor_down_for_a_while_then_everything_arrives_once(forward_env: ForwardEnv, session: Session) -> None:
    forward_env.state.honour_idempotency = False
    ids = queue_complaints(session, 20)
    forward_env.state.go_down(1.0)
    with pytest.raises(outbox.DeliveryDeferred):
        outbox.deliver(outbox_id=ids[0])
    assert not forward_env.state.reports
    drain(ids, threads=3)
    assert states(session) == {"sent": 20}
    counts = forward_env.state.count_by_ref()
    assert len(counts) == 20 and set(counts.values()) == {1}


def test_two_workers_claiming_the_same_item_send_it_once(forward_env: ForwardEnv, session: Session) -> None:
    forward_env.state.honour_idempotency = False
    ids = queue_complaints(session, 10)
    barrier = threading.Barrier(4)

    def race(outbox_id: int) -> str:
        barrier.wait()
        return outbox.deliver(outbox_id=outbox_id).outcome

    for outbox_id in ids:
        with ThreadPoolExecutor(4) as pool:
            outcomes = sorted(pool.map(race, [outbox_id] * 4))
        assert outcomes == ["sent", "skipped", "skipped", "skipped"]
    assert forward_env.state.submit_requests == 10 and len(forward_env.state.reports) == 10


def test_a_claim_whose_worker_died_is_taken_over_after_the_lease(
    forward_env: ForwardEnv, session: Session
) -> None:
    forward_env.state.honour_idempotency = False
    [outbox_id] = queue_complaints(session, 1)
    # A worker claims, sends, and dies before storing the answer.
    with jaring_db.session_factory()() as s:
        claim = outbox._claim(s, outbox_id=outbox_id, worker="dead-worker", lease=0.5)
    assert claim is not None
    complaint = session.get(Complaint, claim.complaint_id)
    sender = outbox.cached_sender(get_settings())
    sender.submit(complaint, idempotency_key=claim.idempotency_key)  # type: ignore[arg-type]

    assert outbox.deliver(outbox_id=outbox_id).outcome == "skipped"  # lease still held
    time.sleep(0.6)
    assert outbox_id in outbox.due_ids(session=session)
    result = outbox.deliver(outbox_id=outbox_id)
    assert result.outcome == "sent"
    assert forward_env.state.submit_requests == 1 and len(forward_env.state.reports) == 1
    outcomes = [a.outcome for a in outbox.attempts_of(session=session, outbox_id=outbox_id)]
    assert outcomes == ["sent"] and item(session, outbox_id).attempts == 2  # the dead worker left no row


def test_many_complaints_with_thirty_percent_faults_no_duplicates_no_losses(
    forward_env: ForwardEnv, session: Session
) -> None:
    state = forward_env.state
    state.honour_idempotency = False  # only our lookup-before-resend stands between us and duplicates
    state.failure_rate, state.timeout_rate, state.timeout_seconds = 0.15, 0.15, 0.7
    ids = queue_complaints(session, 150)
    drain(ids, threads=6, timeout=120)
    assert states(session) == {"sent": 150}
    counts = state.count_by_ref()
    assert len(counts) == 150 and max(counts.values()) == 1
    tracking = session.scalars(sa.select(Complaint.tracking_id)).all()
    assert sorted(tracking) == sorted(state.reports)  # every stored id is the one LAPOR! holds
    failures = session.scalar(
        sa.select(sa.func.count()).select_from(ForwardAttempt).where(ForwardAttempt.outcome.in_(("retry", "unknown")))
    )
    assert failures >= 20  # the faults really happened


def test_manual_sender_queue_and_pasted_tracking_id(
    forward_env: ForwardEnv, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jaring.settings import reset_settings_cache

    monkeypatch.setenv("JARING_LAPOR_SENDER", "manual")
    reset_settings_cache()
    complaints = [add_complaint(session) for _ in range(2)]
    items = [outbox.enqueue(session=session, complaint=c, actor="rina") for c in complaints]
    session.commit()
    assert {i.state for i in items} == {OutboxState.AWAITING_MANUAL.value}
    assert outbox.deliver(outbox_id=items[0].id).outcome == "skipped"  # nothing goes over HTTP

    with pytest.raises(outbox.OutboxError):
        outbox.record_manual_entry(session=session, complaint_id=complaints[0].id, tracking_id="<b>", actor="admin")
    result = outbox.record_manual_entry(session=session, complaint_id=complaints[0].id, tracking_id="5216807",
                                        actor="admin")
    assert result.outcome == "sent"
    with pytest.raises(outbox.OutboxError, match="sudah dipakai"):
        outbox.record_manual_entry(session=session, complaint_id=complaints[1].id, tracking_id="5216807",
                                   actor="admin")
    with pytest.raises(outbox.OutboxError, match="sudah tercatat"):
        outbox.record_manual_entry(session=session, complaint_id=complaints[0].id, tracking_id="5216808",
                                   actor="admin")
    session.expire_all()
    assert session.get(Complaint, complaints[0].id).tracking_id == "5216807"  # type: ignore[union-attr]
    assert not forward_env.state.reports


def test_manual_entry_never_lands_on_an_item_a_worker_claimed_meanwhile(
    forward_env: ForwardEnv, session: Session
) -> None:
    """The admin records a tracking id for an item still queued for the API sender, and a worker claims it
    after the admin's page was checked and before the tracking id is stored."""
    state = forward_env.state
    state.hang_next_submits, state.hang_seconds = 1, 0.3  # the worker's submission is held mid-send
    complaint = add_complaint(session)
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()
    worker = threading.Thread(target=outbox.deliver, kwargs={"outbox_id": outbox_id})

    def worker_claims_before_the_write(orm_execute_state) -> None:  # type: ignore[no-untyped-def]
        if "complaints.tracking_id =" in str(orm_execute_state.statement) and worker.ident is None:
            worker.start()
            assert state.hung.wait(10)  # claimed, and the report is already in LAPOR!

    with jaring_db.session_factory()() as admin:
        sa.event.listen(admin, "do_orm_execute", worker_claims_before_the_write)
        with pytest.raises(outbox.OutboxError, match="sedang dikirim otomatis"):
            outbox.record_manual_entry(session=admin, complaint_id=complaint.id, tracking_id="5216807",
                                       actor="admin")
    worker.join(10)
    assert len(state.reports) == 1
    session.expire_all()
    assert item(session, outbox_id).state == OutboxState.SENT.value
    assert session.get(Complaint, complaint.id).tracking_id == next(iter(state.reports))  # type: ignore[union-attr]
    actions = session.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["outbox.enqueue", "outbox.sent"]


def test_fix_and_retry_after_a_worker_died_in_a_later_round_looks_up_before_resending(
    forward_env: ForwardEnv, session: Session
) -> None:
    state = forward_env.state
    state.honour_idempotency = False  # only the lookup-before-resend prevents a duplicate
    complaint = add_complaint(session, title="   ")
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()
    assert outbox.deliver(outbox_id=outbox_id).outcome == "dead"  # 422: attempt row 1
    outbox.retry_dead(session=session, outbox_id=outbox_id, actor="admin", changes={"title": "Jalan rusak di Oebobo"})

    # Second round: a worker claims, LAPOR! stores the report, the worker dies before recording it.
    with jaring_db.session_factory()() as s:
        claim = outbox._claim(s, outbox_id=outbox_id, worker="dead-worker", lease=0.3)
    assert claim is not None and claim.complaint is not None
    outbox.cached_sender(get_settings()).submit(claim.complaint, idempotency_key=claim.idempotency_key)
    assert len(state.reports) == 1
    # The take-over's lookup is refused (token rotated meanwhile): dead again, LAPOR!'s answer still unknown.
    state.token = "rotated"
    time.sleep(0.4)
    assert outbox.deliver(outbox_id=outbox_id).outcome == "dead"
    state.token = "test-lapor-token"

    outbox.retry_dead(session=session, outbox_id=outbox_id, actor="admin")
    result = outbox.deliver(outbox_id=outbox_id)
    assert result.outcome == "sent"
    assert len(state.reports) == 1 and state.submit_requests == 1  # found by the lookup, not sent again
    assert result.tracking_id == next(iter(state.reports))
