"""The forwarding pages in the review app: dead letters with fix-and-retry, manual entry, roles, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from jaring.settings import reset_settings_cache
from pipelines import outbox
from pipelines.models import Complaint, OutboxState
from review.app import create_app
from tests.forwarding.conftest import ForwardEnv, add_complaint, item, queue_complaints
from tests.review.conftest import XSS, Browserish, app_settings, seed


@pytest.fixture
def web(forward_env: ForwardEnv) -> Iterator[FastAPI]:
    seed(forward_env.database_url)
    application = create_app(app_settings(forward_env.database_url))
    yield application
    application.state.engine.dispose()


def client(app: FastAPI, role: str) -> Browserish:
    browser = Browserish(app)
    assert browser.login(role).status_code == 303  # type: ignore[attr-defined]
    browser.refresh_token("/lapor")
    return browser


def test_dead_letter_is_shown_with_its_reason_and_fixed_then_retried(
    forward_env: ForwardEnv, web: FastAPI, session: Session
) -> None:
    complaint = add_complaint(session, title=" ", body=f"Isi laporan {XSS} cukup panjang untuk LAPOR!")
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()
    assert outbox.deliver(outbox_id=outbox_id).outcome == "dead"

    reviewer = client(web, "reviewer")
    page = reviewer.client.get("/lapor/gagal")
    assert page.status_code == 200 and "Perbaiki &amp; kirim ulang" in page.text
    assert "wajib diisi" in page.text and "<script>alert(1)" not in page.text
    assert "&lt;script&gt;" in page.text

    refused = reviewer.client.post(f"/lapor/{outbox_id}/kirim-ulang", data={"title": "Jalan rusak"})
    assert refused.status_code == 403  # no CSRF token
    assert item(session, outbox_id).state == OutboxState.DEAD.value

    done = reviewer.post(f"/lapor/{outbox_id}/kirim-ulang", data={"title": "Jalan rusak di Oebobo"})
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert item(session, outbox_id).state == OutboxState.PENDING.value
    assert outbox.deliver(outbox_id=outbox_id).outcome == "sent"
    detail = reviewer.client.get(f"/lapor/{outbox_id}")
    assert detail.status_code == 200 and next(iter(forward_env.state.reports)) in detail.text
    assert "Terkirim" in reviewer.client.get("/lapor").text
    reviewer.client.close()


def test_manual_entry_queue_is_copy_ready_and_takes_the_tracking_id(
    forward_env: ForwardEnv, web: FastAPI, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JARING_LAPOR_SENDER", "manual")
    reset_settings_cache()
    complaint = add_complaint(session, title=f"Lampu jalan mati {XSS}")
    outbox.enqueue(session=session, complaint=complaint, actor="rina")
    session.commit()

    admin = client(web, "admin")
    page = admin.client.get("/lapor/manual")
    assert page.status_code == 200 and "Judul Laporan" in page.text and "Instansi Tujuan" in page.text
    assert "Dinas PUPR Kota Kupang" in page.text and "<script>alert(1)" not in page.text

    bad = admin.post(f"/lapor/manual/{complaint.id}", data={"tracking_id": "<b>"})
    assert bad.status_code == 303  # type: ignore[attr-defined]
    assert "tidak valid" in admin.client.get("/lapor/manual").text
    admin.refresh_token("/lapor")
    admin.post(f"/lapor/manual/{complaint.id}", data={"tracking_id": "5216807"})
    session.expire_all()
    assert session.get(Complaint, complaint.id).tracking_id == "5216807"  # type: ignore[union-attr]
    assert "Tidak ada aduan yang menunggu" in admin.client.get("/lapor/manual").text
    admin.client.close()


def test_viewers_cannot_reach_the_outbox(forward_env: ForwardEnv, web: FastAPI) -> None:
    viewer = Browserish(web)
    viewer.login("viewer")
    assert viewer.client.get("/lapor").status_code == 403
    assert viewer.client.get("/lapor/manual").status_code == 403
    viewer.client.close()
    anonymous = Browserish(web)
    assert anonymous.client.get("/lapor/gagal").status_code == 303  # to the login page
    anonymous.client.close()


def test_forwarding_pages_explain_failures_in_bahasa_indonesia(
    forward_env: ForwardEnv, web: FastAPI, session: Session
) -> None:
    forward_env.state.token = "rotated"
    [dead_id] = queue_complaints(session, 1)
    assert outbox.deliver(outbox_id=dead_id).outcome == "dead"
    forward_env.state.token = "test-lapor-token"
    [sent_id] = queue_complaints(session, 1)
    assert outbox.deliver(outbox_id=sent_id).outcome == "sent"
    unsent = item(session, dead_id).complaint_id
    sent = session.get(Complaint, item(session, sent_id).complaint_id)
    assert sent is not None
    sent.forwarded_at = sent.forwarded_at - timedelta(days=30)  # type: ignore[operator]
    sent.overdue = True
    session.commit()

    reviewer = client(web, "reviewer")
    dead_page = reviewer.client.get("/lapor/gagal").text
    assert "Token LAPOR! ditolak (401)" in dead_page and "refused" not in dead_page
    detail = reviewer.client.get(f"/lapor/{dead_id}").text
    assert "Token LAPOR! ditolak (401)" in detail and "<td>gagal</td>" in detail and "<td>dead</td>" not in detail
    overdue = reviewer.client.get(f"/lapor/{sent_id}").text
    assert "melewati batas waktu (verifikasi)" in overdue and "verify" not in overdue
    assert "<td>terkirim</td>" in overdue and "(pengirim API)" in overdue
    reviewer.post(f"/lapor/aduan/{unsent}/status", data={"status": "Terverifikasi"})
    flash = reviewer.client.get("/lapor").text
    assert f"Aduan #{unsent} belum punya nomor pelacakan LAPOR!" in flash and "tracking id" not in flash
    reviewer.client.close()


def test_manual_entry_page_warns_about_an_api_attempt_whose_outcome_is_unknown(
    forward_env: ForwardEnv, web: FastAPI, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import sqlalchemy as sa

    from pipelines.models import ForwardAttempt
    from review.templating import local_time

    state = forward_env.state
    state.timeout_rate = 1.0  # LAPOR! stores the report, but the answer comes after the client gave up
    uncertain_id, untried_id = queue_complaints(session, 2)
    with pytest.raises(outbox.DeliveryDeferred):
        outbox.deliver(outbox_id=uncertain_id)
    assert item(session, uncertain_id).state == OutboxState.UNKNOWN.value and len(state.reports) == 1
    attempted_at = session.scalar(sa.select(ForwardAttempt.started_at).where(ForwardAttempt.outcome == "unknown"))

    monkeypatch.setenv("JARING_LAPOR_SENDER", "manual")  # the city switches to manual entry
    reset_settings_cache()
    outbox.close_senders()
    time.sleep(0.3)  # past the retry backoff
    assert [outbox.deliver(outbox_id=i).outcome for i in (uncertain_id, untried_id)] == ["manual", "manual"]

    admin = client(web, "admin")
    page = admin.client.get("/lapor/manual").text
    uncertain, untried = (item(session, i).complaint_id for i in (uncertain_id, untried_id))
    first, second = page.index(f'id="manual-{uncertain}"'), page.index(f'id="manual-{untried}"')
    warned = page[first:second] if first < second else page[first:]
    calm = page[second:first] if second < first else page[second:]
    assert "Periksa LAPOR! dulu" in warned and "mungkin sudah ada di LAPOR!" in warned
    assert local_time(attempted_at) in warned
    assert "Periksa LAPOR! dulu" not in calm
    assert 'name="tracking_id"' in warned  # a warning, not a block: the tracking id can still be stored
    admin.client.close()


def test_fix_and_retry_holds_a_changed_title_and_body_to_the_composers_limits(
    forward_env: ForwardEnv, web: FastAPI, session: Session
) -> None:
    from pipelines.complaints import BODY_MAX, TITLE_MAX

    long_body = "Jalan di Oebobo rusak parah.\n" * 150  # an auto-forwarded body may pass BODY_MAX
    complaint = add_complaint(session, title=" ", body=long_body.strip())
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()
    assert outbox.deliver(outbox_id=outbox_id).outcome == "dead"

    reviewer = client(web, "reviewer")
    page = reviewer.client.get("/lapor/gagal").text
    assert f'name="title" value=" " minlength="10" maxlength="{TITLE_MAX}"' in page
    assert f'name="body" rows="5" minlength="20" maxlength="{BODY_MAX}"' in page
    browser_body = long_body.strip().replace("\n", "\r\n")  # how a browser submits a textarea

    reviewer.post(f"/lapor/{outbox_id}/kirim-ulang", data={"title": "Jalan rusak " * 20, "body": browser_body})
    assert f"Judul harus 10–{TITLE_MAX} karakter" in reviewer.client.get("/lapor/gagal").text
    assert item(session, outbox_id).state == OutboxState.DEAD.value
    assert session.get(Complaint, complaint.id).title == " "  # type: ignore[union-attr]

    reviewer.refresh_token("/lapor")
    reviewer.post(f"/lapor/{outbox_id}/kirim-ulang", data={"title": "Jalan rusak", "body": "terlalu pendek"})
    assert f"Isi harus 20–{BODY_MAX} karakter" in reviewer.client.get("/lapor/gagal").text
    assert item(session, outbox_id).state == OutboxState.DEAD.value

    reviewer.refresh_token("/lapor")
    reviewer.post(f"/lapor/{outbox_id}/kirim-ulang", data={"title": "Jalan rusak di Oebobo", "body": browser_body})
    assert item(session, outbox_id).state == OutboxState.PENDING.value
    session.expire_all()
    stored = session.get(Complaint, complaint.id)
    assert stored.title == "Jalan rusak di Oebobo" and stored.body == long_body.strip()  # type: ignore[union-attr]
    reviewer.client.close()
