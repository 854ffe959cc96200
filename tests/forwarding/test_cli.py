"""``jaring outbox …``, ``jaring forward …`` and ``jaring manual …`` against the stand-in."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from jaring.cli import app
from jaring.settings import reset_settings_cache
from pipelines import outbox
from pipelines.models import Complaint, OutboxState
from tests.forwarding.conftest import ForwardEnv, add_complaint, item, queue_complaints

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_deliver_list_show_sync(forward_env: ForwardEnv, session: Session) -> None:
    ids = queue_complaints(session, 3)
    assert json.loads(run("forward", "deliver")) == {"sent": 3}
    listed = run("outbox", "list", "--json")
    assert listed.count('"state": "sent"') == 3
    shown = run("outbox", "show", str(ids[0]))
    assert '"tracking_id": "53000' in shown and "sent" in shown
    tracking = item(session, ids[0])
    forward_env.state.set_status(forward_env.state.by_ref[tracking.idempotency_key], "Terdisposisi")
    assert json.loads(run("forward", "sync"))["changed"] == 1


def test_retry_dead_with_a_fixed_title(forward_env: ForwardEnv, session: Session) -> None:
    complaint = add_complaint(session, title=" ")
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()
    assert outbox.deliver(outbox_id=outbox_id).outcome == "dead"
    assert "dead=1" in run("outbox", "list", "--state", "dead")
    assert "retried 1" in run("outbox", "retry", str(outbox_id), "--title", "Jalan rusak di Oebobo")
    assert item(session, outbox_id).state == OutboxState.PENDING.value
    failed = runner.invoke(app, ["outbox", "retry", str(outbox_id)])
    assert failed.exit_code == 1 and "tidak berstatus gagal" in failed.output


def test_retry_all_dead_saves_nothing_of_an_item_it_could_not_retry(
    forward_env: ForwardEnv, session: Session
) -> None:
    import sqlalchemy as sa

    from pipelines.models import AuditLog

    fixable = add_complaint(session, title=" ")  # dead for its blank title; --title fixes it
    fixable_id = outbox.enqueue(session=session, complaint=fixable, actor="rina").id
    unfixable = add_complaint(session, title="Air PDAM mati di Maulafa", body=" ")  # blank body: --title cannot fix
    unfixable_id = outbox.enqueue(session=session, complaint=unfixable, actor="rina").id
    session.commit()
    assert [outbox.deliver(outbox_id=i).outcome for i in (fixable_id, unfixable_id)] == ["dead", "dead"]

    result = runner.invoke(app, ["outbox", "retry", "--all-dead", "--title", "Jalan rusak di Oebobo"])
    assert result.exit_code == 0, result.output
    assert "Judul dan isi laporan wajib diisi" in result.output and "retried 1" in result.output
    session.expire_all()
    assert session.get(Complaint, fixable.id).title == "Jalan rusak di Oebobo"  # type: ignore[union-attr]
    # The newest item failed first; the next item's commit must not have saved its new title unaudited.
    assert session.get(Complaint, unfixable.id).title == "Air PDAM mati di Maulafa"  # type: ignore[union-attr]
    assert item(session, unfixable_id).state == OutboxState.DEAD.value
    retried = session.scalars(sa.select(AuditLog.object_id).where(AuditLog.action == "outbox.retry")).all()
    assert retried == [str(fixable.id)]


def test_manual_record(forward_env: ForwardEnv, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARING_LAPOR_SENDER", "manual")
    reset_settings_cache()
    complaint = add_complaint(session)
    outbox.enqueue(session=session, complaint=complaint, actor="rina")
    session.commit()
    assert "5216807" in run("manual", "record", "--complaint", str(complaint.id), "--tracking-id", "5216807")
    assert "1 change" in run("manual", "status", "--complaint", str(complaint.id), "--status", "Terdisposisi")
    session.expire_all()
    stored = session.get(Complaint, complaint.id)
    assert stored.tracking_id == "5216807" and stored.lapor_status == "Terdisposisi"  # type: ignore[union-attr]
    again = runner.invoke(app, ["manual", "record", "--complaint", str(complaint.id), "--tracking-id", "1"])
    assert again.exit_code == 1


def test_manual_items_move_to_the_api_sender(
    forward_env: ForwardEnv, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JARING_LAPOR_SENDER", "manual")
    reset_settings_cache()
    complaint = add_complaint(session)
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()
    assert runner.invoke(app, ["outbox", "manual-to-api"]).exit_code == 1  # still configured manual
    monkeypatch.setenv("JARING_LAPOR_SENDER", "api")
    reset_settings_cache()
    assert "moved 1" in run("outbox", "manual-to-api")
    assert outbox.deliver(outbox_id=outbox_id).outcome == "sent"
    assert len(forward_env.state.reports) == 1
