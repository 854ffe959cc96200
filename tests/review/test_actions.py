"""Review services: composing complaints (exactly one per post, even under a race), validation,
keyset pagination, dashboard figures and masked exports — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from classifier.city import load_city
from pipelines import dashboard, exports, review_actions
from pipelines.models import AuditLog, Complaint, ComplaintStatusEvent, OutboxItem, Post, Review, User
from review.inbox import InboxFilters, decode_cursor, encode_cursor, inbox_page

CITY = load_city()


def _form(**overrides):
    values = dict(title="Jalan rusak parah di Oebobo dekat pasar", body="Jalan di Oebobo rusak parah, lubang besar.\n\n"
                  "Sumber: X", category="Pekerjaan Umum dan Penataan Ruang", topic="infrastruktur", agency="PUPR",
                  instansi="Dinas Pekerjaan Umum dan Penataan Ruang Kota Kupang", kecamatan="Oebobo",
                  kelurahan="Oebobo", location_text="Kel. Oebobo, Kec. Oebobo")
    values.update(overrides)
    return review_actions.ComplaintForm(**values)


def _user(db, name="reviewer") -> User:
    return db.scalar(sa.select(User).where(User.username == name))


def test_compose_creates_complaint_and_outbox_row_in_one_transaction(db, seeded) -> None:
    composed = review_actions.compose_complaint(session=db, post_id=seeded["jalan"], user=_user(db), form=_form(),
                                                city=CITY)
    db.commit()
    complaint = db.scalars(sa.select(Complaint)).one()
    assert complaint.id == composed.complaint.id and complaint.post_id == seeded["jalan"]
    assert complaint.confidential is True and complaint.anonymous is False and complaint.auto is False
    item = db.scalars(sa.select(OutboxItem)).one()
    assert item.complaint_id == complaint.id and composed.outbox_id == item.id
    assert db.get(Post, seeded["jalan"]).status == "confirmed"  # a queued post is confirmed on the way
    actions = [a for (a,) in db.execute(sa.select(AuditLog.action).order_by(AuditLog.id))]
    assert actions == ["post.confirm", "complaint.create", "post.compose", "outbox.enqueue"]


def test_compose_validates_fields(db, seeded) -> None:
    post = db.get(Post, seeded["jalan"])
    errors = _form(title="pendek", kelurahan="Oesapa", attachments=[{"url": "https://evil.invalid/x.jpg"}]).validate(
        city=CITY, post=post)
    assert set(errors) == {"title", "kelurahan", "attachments"}
    assert _form(attachments=[{"type": "photo", "url": "https://example.invalid/jalan.jpg"}]).validate(
        city=CITY, post=post) == {}
    with pytest.raises(review_actions.ActionError):
        review_actions.compose_complaint(session=db, post_id=seeded["jalan"], user=_user(db), form=_form(body="x"),
                                         city=CITY)
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 0


def test_two_reviewers_composing_at_once_make_one_complaint(app, seeded) -> None:
    factory = app.state.session_factory
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def compose(username: str) -> None:
        with factory() as s:
            user = s.scalar(sa.select(User).where(User.username == username))
            barrier.wait()
            try:
                review_actions.compose_complaint(session=s, post_id=seeded["air"], user=user, city=CITY,
                                                 form=_form(kecamatan="Maulafa", kelurahan=None))
                s.commit()
                outcomes.append("ok")
            except (review_actions.ActionConflict, sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                s.rollback()
                outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=compose, args=(name,)) for name in ("reviewer", "admin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(Review).where(Review.post_id == seeded["air"])) == 1
    assert sorted(outcomes)[-1] == "ok" and outcomes.count("ok") == 1


def test_composer_page_is_prefilled_and_queues(browserish, seeded, db) -> None:
    c = browserish()
    c.login("reviewer")
    page = c.client.get(f"/kiriman/{seeded['jalan']}/aduan").text
    assert "Dinas Pekerjaan Umum dan Penataan Ruang Kota Kupang" in page
    assert '<option value="Oebobo" selected>Oebobo</option>' in page
    assert 'name="confidential" value="1" id="confidential" checked' in page
    assert "https://example.invalid/jalan" in page  # source link in the body
    bad = c.post(f"/kiriman/{seeded['jalan']}/aduan", {"title": "x", "body": "y", "category": "", "instansi": ""})
    assert bad.status_code == 400 and "Judul harus" in bad.text
    data = {"title": "Jalan berlubang di Oebobo dekat pasar", "body": "Jalan di Oebobo rusak parah, lubang besar dekat "
            "pasar.\n\nSumber: X — https://example.invalid/jalan", "category": "Pekerjaan Umum dan Penataan Ruang",
            "topic": "infrastruktur", "agency": "PUPR", "instansi": "Dinas Pekerjaan Umum dan Penataan Ruang Kota Kupang",
            "kecamatan": "Oebobo", "kelurahan": "", "location_text": "Kec. Oebobo", "confidential": "1",
            "incident_date": "2026-11-20", "attachments": "https://example.invalid/jalan.jpg", "include_group": "1"}
    ok = c.post(f"/kiriman/{seeded['jalan']}/aduan", data)
    assert ok.status_code == 303
    complaint = db.scalars(sa.select(Complaint)).one()
    assert complaint.title == data["title"] and complaint.attachments == [
        {"type": "photo", "url": "https://example.invalid/jalan.jpg"}]
    assert "Kiriman serupa (1)" in complaint.body
    assert db.scalars(sa.select(OutboxItem)).one().complaint_id == complaint.id
    again = c.post(f"/kiriman/{seeded['jalan']}/aduan", data)
    assert again.status_code == 303
    assert db.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 1


def test_a_group_members_link_in_the_complaint_is_only_ever_http(browserish, seeded, db) -> None:
    db.get(Post, seeded["jalan2"]).url = "javascript:alert(document.cookie)"
    db.commit()
    c = browserish()
    c.login("reviewer")
    data = {"title": "Jalan berlubang di Oebobo dekat pasar", "body": "Jalan di Oebobo rusak parah, lubang besar dekat "
            "pasar.", "category": "Pekerjaan Umum dan Penataan Ruang", "topic": "infrastruktur", "agency": "PUPR",
            "instansi": "Dinas Pekerjaan Umum dan Penataan Ruang Kota Kupang", "kecamatan": "Oebobo",
            "location_text": "Kec. Oebobo", "include_group": "1"}
    assert c.post(f"/kiriman/{seeded['jalan']}/aduan", data).status_code == 303
    body = db.scalars(sa.select(Complaint)).one().body
    assert "javascript:" not in body
    assert body.endswith(f"Kiriman serupa (1):\n- kiriman #{seeded['jalan2']}")


def test_keyset_pages_cover_every_post_once_with_tied_priorities(db, seeded) -> None:
    for i in range(23):
        db.add(Post(platform="twitter", external_id=f"tie-{i}", text=f"tie {i}", status="queued",
                    priority=0.5 if i % 2 else 0.3, raw={}))
    db.commit()
    seen: list[int] = []
    cursor = None
    while True:
        page = inbox_page(session=db, filters=InboxFilters(), cursor=cursor, page_size=5)
        seen.extend(p.id for p in page.posts)
        cursor = page.next_cursor
        if cursor is None:
            break
    total = db.scalar(sa.select(sa.func.count()).select_from(Post).where(Post.status == "queued"))
    assert len(seen) == len(set(seen)) == total
    keys = [(db.get(Post, i).priority, i) for i in seen]
    assert keys == sorted(keys, reverse=True)
    assert decode_cursor(encode_cursor(0.5, 7)) == (0.5, 7)
    assert decode_cursor("garbage!!") is None


def test_search_treats_like_wildcards_literally(db, seeded) -> None:
    db.add(Post(platform="twitter", external_id="pct", text="diskon 100% hari ini", status="queued", raw={}))
    db.commit()
    found = inbox_page(session=db, filters=InboxFilters(q="100%"), page_size=10).posts
    assert [p.external_id for p in found] == ["pct"]
    assert inbox_page(session=db, filters=InboxFilters(q="%"), page_size=10).posts[0].external_id == "pct"


def test_dashboard_counts_funnel_and_medians(db, seeded) -> None:
    now = datetime.now(UTC)
    reviewer = _user(db)
    post = db.get(Post, seeded["jalan"])
    post.harvested_at = now - timedelta(hours=10)
    post.status = "forwarded"
    db.add(Review(post_id=post.id, user_id=reviewer.id, decision="confirm", created_at=now - timedelta(hours=8)))
    complaint = Complaint(post_id=post.id, title="t" * 12, body="b" * 30, opd="Dinas PUPR", topic="infrastruktur",
                          kecamatan="Oebobo", created_at=now - timedelta(hours=8), forwarded_at=now - timedelta(hours=7),
                          tracking_id="LAP-1")
    db.add(complaint)
    db.flush()
    db.add(ComplaintStatusEvent(complaint_id=complaint.id, status="Terverifikasi", changed_at=now - timedelta(hours=7)))
    db.add(ComplaintStatusEvent(complaint_id=complaint.id, status="Ditindaklanjuti", changed_at=now - timedelta(hours=3)))
    db.commit()
    data = dashboard.build(session=db, start=(now - timedelta(days=6)).date(), end=now.date())
    assert data.complaints_total == 1
    assert data.totals["opd"] == [("Dinas PUPR", 1)] and data.totals["platform"] == [("twitter", 1)]
    assert data.funnel.steps() == [("Tertangkap", 6), ("Keluhan", 5), ("Ditinjau", 1), ("Diteruskan", 1),
                                   ("Ditindaklanjuti", 1)]
    medians = {label: seconds for label, seconds, _ in data.medians}
    assert medians["Tertangkap → ditinjau"] == pytest.approx(2 * 3600, abs=5)
    assert medians["Ditinjau → diteruskan"] == pytest.approx(3600, abs=5)
    assert medians["Diteruskan → ditindaklanjuti"] == pytest.approx(4 * 3600, abs=5)
    assert dashboard.human_duration(90061) == "1 hari 1 jam"


def test_exports_mask_personal_data_and_neutralise_formulas(db, seeded) -> None:
    db.add(Complaint(post_id=seeded["jalan"], title="=HYPERLINK(\"http://evil\")", category="Jalan",
                     body="Hubungi 081234567890 atau budi.santoso@mail.com, NIK 5371012345678901", opd="Dinas PUPR"))
    db.commit()
    today = datetime.now(UTC).date()
    text = exports.export_csv(session=db, start=today - timedelta(days=1), end=today)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["ID aduan", "Dibuat (UTC)", "Judul"]
    body = rows[1][3]
    for secret in ("081234567890", "budi.santoso@mail.com", "5371012345678901"):
        assert secret not in text
    assert "***" in body or "****" in body
    assert rows[1][2].startswith("'=")
    workbook = load_workbook(io.BytesIO(exports.export_xlsx(session=db, start=today, end=today)))
    cells = [c.value for c in workbook["Aduan"][2]]
    assert "081234567890" not in str(cells) and cells[2].startswith("'=")
    assert exports.export_csv(session=db, start=date(2000, 1, 1), end=date(2000, 1, 2)).count("\n") == 1


def test_search_by_author_prefix(db, seeded) -> None:
    found = inbox_page(session=db, filters=InboxFilters(q="@warga_ai"), page_size=10).posts
    assert [p.id for p in found] == [seeded["air"]]
    assert inbox_page(session=db, filters=InboxFilters(q="@nobody"), page_size=10).posts == []


def test_followed_up_uses_the_forwarding_status_map_with_a_fallback(tmp_path) -> None:
    configured = dashboard.followed_up_predicate()
    assert configured("Ditindaklanjuti") and configured("Selesai")
    assert not configured("Terverifikasi") and not configured("Diarsipkan oleh Sistem")
    fallback = dashboard.followed_up_predicate(tmp_path / "missing.yaml")
    assert fallback("Ditindaklanjuti") and not fallback("Terdisposisi") and not fallback("")


def test_dashboard_medians_from_an_even_sample_when_many_posts(db, seeded, monkeypatch) -> None:
    now = datetime.now(UTC)
    reviewer = _user(db)
    for i in range(12):
        post = Post(platform="twitter", external_id=f"many-{i}", text="x", status="rejected", raw={},
                    created_at=now - timedelta(hours=3), harvested_at=now - timedelta(hours=2))
        db.add(post)
        db.flush()
        db.add(Review(post_id=post.id, user_id=reviewer.id, decision="spam", created_at=now - timedelta(hours=1)))
    db.commit()
    monkeypatch.setattr(dashboard, "MEDIAN_SAMPLE", 4)
    data = dashboard.build(session=db, start=(now - timedelta(days=1)).date(), end=now.date())
    label, seconds, n = data.medians[1]
    assert label == "Tertangkap → ditinjau" and 3 <= n <= 6 and seconds == pytest.approx(3600, abs=5)
    assert data.funnel.reviewed == 12


def test_bulk_keeps_earlier_successes_when_a_later_post_conflicts(db, seeded) -> None:
    reviewer = _user(db)
    review_actions.reject(session=db, post_id=seeded["bukan"], user=reviewer, reason="spam")
    db.commit()
    result = review_actions.bulk_confirm(session=db, post_ids=[seeded["air"], seeded["bukan"], seeded["sampah"]],
                                         user=reviewer)
    db.commit()
    assert result.done == [seeded["air"], seeded["sampah"]] and list(result.skipped) == [seeded["bukan"]]
    db.expire_all()
    statuses = {pid: db.get(Post, pid).status for pid in (seeded["air"], seeded["bukan"], seeded["sampah"])}
    assert statuses == {seeded["air"]: "confirmed", seeded["bukan"]: "rejected", seeded["sampah"]: "confirmed"}
    assert db.scalar(sa.select(sa.func.count()).select_from(Review)) == 3
