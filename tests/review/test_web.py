"""The web app over HTTP (TestClient) on SQLite and PostgreSQL: auth, CSRF, roles, escaping, actions."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.models import AuditLog, Post, Review, User
from tests.review.conftest import PASSWORD, XSS, TestClient


def test_login_sets_a_hardened_session_cookie_and_logout_ends_it(browserish, app) -> None:
    c = browserish()
    response = c.login("reviewer")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert c.client.get("/kotak-masuk").status_code == 200
    copied = dict(c.client.cookies)  # e.g. lifted from a shared computer before the reviewer logs out
    other_device = browserish()
    other_device.login("reviewer")
    assert c.post("/keluar").status_code == 303
    again = c.client.get("/kotak-masuk")
    assert again.status_code == 303 and again.headers["location"].startswith("/masuk")
    thief = TestClient(app, base_url="http://testserver", follow_redirects=False, cookies=copied)
    stolen = thief.get("/kotak-masuk")
    assert stolen.status_code == 303 and stolen.headers["location"].startswith("/masuk")
    assert other_device.client.get("/kotak-masuk").status_code == 303  # logout ends every session of the account
    c.login("reviewer")
    assert c.client.get("/kotak-masuk").status_code == 200  # logging in again works


def test_cookie_is_secure_in_production(app, db_url) -> None:
    from review.app import create_app
    from tests.review.conftest import app_settings

    settings = app_settings(db_url).model_copy(update={"environment": "production"})
    prod = create_app(settings)
    with TestClient(prod, base_url="https://testserver") as client:
        assert "Secure" in client.get("/masuk").headers["set-cookie"]
    prod.state.engine.dispose()


def test_production_refuses_the_default_secret(db_url) -> None:
    import pytest

    from jaring.settings import Settings
    from review.app import create_app

    with pytest.raises(ValueError, match="JARING_SECRET_KEY"):
        create_app(Settings(database_url=db_url, environment="production"))


def test_wrong_password_is_refused_and_logged(browserish, db) -> None:
    c = browserish()
    response = c.login("reviewer", "salah-sandi-123")
    assert response.status_code == 401
    assert "salah" in response.text
    failures = db.scalars(sa.select(AuditLog).where(AuditLog.action == "auth.login_failed")).all()
    assert [f.object_id for f in failures] == ["reviewer"]


def test_login_is_rate_limited_per_username(browserish) -> None:
    c = browserish()
    for _ in range(5):
        assert c.login("admin", "tebak-tebakan-1").status_code == 401
    # Even the right password is refused while the username is locked.
    locked = c.login("admin", PASSWORD)
    assert locked.status_code == 429
    assert "Terlalu banyak" in locked.text


def test_post_without_csrf_token_is_refused(browserish, seeded, db) -> None:
    c = browserish()
    c.login("reviewer")
    no_token = c.client.post(f"/kiriman/{seeded['air']}/konfirmasi", data={})
    assert no_token.status_code == 403
    wrong = c.client.post(f"/kiriman/{seeded['air']}/konfirmasi", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert db.get(Post, seeded["air"]).status == "queued"
    # The header form works too (for scripts), and so does the right token.
    ok = c.client.post(f"/kiriman/{seeded['air']}/konfirmasi", headers={"X-CSRF-Token": c.token})
    assert ok.status_code == 303
    db.expire_all()
    assert db.get(Post, seeded["air"]).status == "confirmed"


def test_cross_origin_post_is_refused_even_with_token(browserish, seeded) -> None:
    c = browserish()
    c.login("reviewer")
    response = c.client.post(f"/kiriman/{seeded['air']}/konfirmasi", data={"csrf_token": c.token},
                             headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_login_form_needs_csrf_too(browserish) -> None:
    c = browserish()
    response = c.client.post("/masuk", data={"username": "reviewer", "password": PASSWORD})
    assert response.status_code == 403


def test_viewer_sees_dashboard_but_no_reviewer_pages_or_actions(browserish, seeded, db) -> None:
    c = browserish()
    response = c.login("viewer")
    assert response.headers["location"] == "/dasbor"
    assert c.client.get("/dasbor").status_code == 200
    for path in ("/kotak-masuk", f"/kiriman/{seeded['jalan']}", f"/kiriman/{seeded['jalan']}/aduan",
                 "/ekspor", "/admin/pengguna"):
        assert c.client.get(path).status_code == 403, path
    for path in (f"/kiriman/{seeded['jalan']}/konfirmasi", f"/kiriman/{seeded['jalan']}/tolak",
                 "/kotak-masuk/massal", f"/kiriman/{seeded['jalan']}/aduan", "/admin/pengguna"):
        assert c.post(path, {"reason": "spam", "ids": [seeded["jalan"]], "action": "confirm"}).status_code == 403, path
    assert db.get(Post, seeded["jalan"]).status == "queued"
    assert "Kotak masuk" not in c.client.get("/dasbor").text


def test_analyst_reads_the_inbox_but_cannot_act(browserish, seeded) -> None:
    c = browserish()
    c.login("analyst")
    page = c.client.get("/kotak-masuk")
    assert page.status_code == 200 and 'name="ids"' not in page.text
    assert c.post(f"/kiriman/{seeded['jalan']}/tolak", {"reason": "spam"}).status_code == 403


def test_anonymous_is_sent_to_login(app) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = client.get("/kotak-masuk?status=queued")
        assert response.status_code == 303
        assert response.headers["location"] == "/masuk?next=%2Fkotak-masuk%3Fstatus%3Dqueued"
        assert client.post("/kotak-masuk/massal").status_code == 403  # no session, no token


def test_hostile_text_is_escaped_everywhere(browserish, seeded) -> None:
    c = browserish()
    c.login("reviewer")
    for path in ("/kotak-masuk", f"/kiriman/{seeded['xss']}"):
        html = c.client.get(path).text
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    detail = c.client.get(f"/kiriman/{seeded['xss']}")
    assert "&lt;b&gt;x&lt;/b&gt;" in detail.text  # explanation terms are hostile too
    csp = detail.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "unsafe-inline" not in csp


def test_inbox_orders_by_priority_filters_and_pages(browserish, seeded) -> None:
    c = browserish()
    c.login("reviewer")
    html = c.client.get("/kotak-masuk").text
    order = [int(x) for x in __import__("re").findall(r'class="item" data-id="(\d+)"', html)]
    assert order == [seeded[n] for n in ("jalan", "jalan2", "air", "sampah", "xss", "bukan")]
    assert "×2 serupa" in html
    filtered = c.client.get("/kotak-masuk", params={"platform": "facebook", "skor_min": "0.85"}).text
    assert __import__("re").findall(r'class="item" data-id="(\d+)"', filtered) == [str(seeded["jalan2"])]
    searched = c.client.get("/kotak-masuk", params={"q": "PDAM"}).text
    assert __import__("re").findall(r'class="item" data-id="(\d+)"', searched) == [str(seeded["air"])]
    by_kec = c.client.get("/kotak-masuk", params={"kecamatan": "Kota Lama", "topic": "sampah"}).text
    assert __import__("re").findall(r'class="item" data-id="(\d+)"', by_kec) == [str(seeded["sampah"])]


def test_confirm_with_corrected_opd_is_reviewed_and_audited(browserish, seeded, db) -> None:
    c = browserish()
    c.login("reviewer")
    response = c.post(f"/kiriman/{seeded['sampah']}/konfirmasi", {"agency": "SATPOLPP", "topic": ""})
    assert response.status_code == 303
    post = db.get(Post, seeded["sampah"])
    assert (post.status, post.agency, post.topic) == ("confirmed", "SATPOLPP", "sampah")
    review = db.scalars(sa.select(Review).where(Review.post_id == post.id)).one()
    assert (review.decision, review.agency, review.user_id) == ("confirm", "SATPOLPP", db.scalar(
        sa.select(User.id).where(User.username == "reviewer")))
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "post.confirm")).one()
    assert entry.actor == "reviewer" and entry.details["corrected_from"]["agency"] == "LINGKUNGAN_HIDUP"
    history = c.client.get(f"/kiriman/{post.id}").text
    assert "post.confirm" in history and "reviewer" in history
    # A second confirm of the same post is a conflict, not a second review.
    c.post(f"/kiriman/{seeded['sampah']}/konfirmasi")
    assert len(db.scalars(sa.select(Review).where(Review.post_id == post.id)).all()) == 1


def test_bulk_reject_skips_posts_someone_else_handled(browserish, seeded, db) -> None:
    a, b = browserish(), browserish()
    a.login("reviewer")
    b.login("admin")
    assert b.post(f"/kiriman/{seeded['bukan']}/konfirmasi").status_code == 303
    a.post("/kotak-masuk/massal", {"ids": [seeded["bukan"], seeded["xss"]], "action": "reject:spam"})
    db.expire_all()
    assert db.get(Post, seeded["xss"]).status == "rejected"
    assert db.get(Post, seeded["bukan"]).status == "confirmed"
    assert "1 dilewati" in a.client.get("/kotak-masuk").text


def test_reject_as_duplicate_needs_an_existing_original(browserish, seeded, db) -> None:
    c = browserish()
    c.login("reviewer")
    c.post(f"/kiriman/{seeded['jalan2']}/tolak", {"reason": "duplicate", "duplicate_of": "999999"})
    assert db.get(Post, seeded["jalan2"]).status == "queued"
    c.post(f"/kiriman/{seeded['jalan2']}/tolak", {"reason": "duplicate", "duplicate_of": f"#{seeded['jalan']}"})
    db.expire_all()
    post = db.get(Post, seeded["jalan2"])
    assert (post.status, post.duplicate_of_id) == ("rejected", seeded["jalan"])


def test_admin_manages_users_and_a_password_change_ends_sessions(browserish, db) -> None:
    admin, victim = browserish(), browserish()
    admin.login("admin")
    victim.login("analyst")
    assert admin.post("/admin/pengguna", {"username": "humas2", "password": "pendek", "role": "reviewer"}).status_code == 303
    assert db.scalar(sa.select(User).where(User.username == "humas2")) is None
    admin.post("/admin/pengguna", {"username": "humas2", "password": "cukup-panjang-1", "role": "reviewer"})
    created = db.scalar(sa.select(User).where(User.username == "humas2"))
    assert created is not None and created.role == "reviewer" and created.password_hash.startswith("$argon2id$")
    analyst_id = db.scalar(sa.select(User.id).where(User.username == "analyst"))
    admin.post(f"/admin/pengguna/{analyst_id}", {"password": "sandi-baru-yang-panjang"})
    assert victim.client.get("/kotak-masuk").status_code == 303  # logged out everywhere
    actions = set(db.scalars(sa.select(AuditLog.action)).all())
    assert {"user.create", "user.update"} <= actions


def test_dashboard_and_export_render(browserish, seeded) -> None:
    c = browserish()
    c.login("admin")
    page = c.client.get("/dasbor")
    assert page.status_code == 200 and "<svg" in page.text and "Tertangkap: 6" in page.text
    csv_response = c.client.get("/ekspor", params={"format": "csv"})
    assert csv_response.status_code == 200 and csv_response.headers["content-disposition"].startswith("attachment")


def test_bulk_reject_as_duplicates_of_one_original(browserish, seeded, db) -> None:
    c = browserish()
    c.login("reviewer")
    c.post("/kotak-masuk/massal", {"ids": [seeded["jalan2"], seeded["xss"]], "action": "reject:duplicate",
                                   "duplicate_of": str(seeded["jalan"])})
    rows = db.execute(sa.select(Post.status, Post.duplicate_of_id).where(Post.id.in_([seeded["jalan2"], seeded["xss"]])))
    assert set(rows) == {("rejected", seeded["jalan"])}
    decisions = db.scalars(sa.select(Review.decision).where(Review.post_id.in_([seeded["jalan2"], seeded["xss"]])))
    assert list(decisions) == ["duplicate", "duplicate"]


def test_login_redirect_stays_on_this_site() -> None:
    from review.views import safe_next

    for hostile in ("//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example", "/\n/x", ""):
        assert safe_next(hostile, "/") == "/", repr(hostile)
    assert safe_next("/kotak-masuk?topic=sampah", "/") == "/kotak-masuk?topic=sampah"


def _recorded_action_codes() -> set[str]:
    """Every action code passed to ``audit.record(...)`` in the code base (f-strings expanded)."""
    import ast
    from pathlib import Path

    from pipelines.review_actions import REJECT_REASONS

    root = Path(__file__).resolve().parents[2]
    codes: set[str] = set()
    for folder in ("jaring", "pipelines", "review", "harvester", "classifier", "standins"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "record"):
                    continue
                for keyword in node.keywords:
                    if keyword.arg != "action":
                        continue
                    for part in ast.walk(keyword.value):
                        if isinstance(part, ast.Constant) and isinstance(part.value, str):
                            codes.add(part.value)
                        elif isinstance(part, ast.JoinedStr):
                            assert ast.unparse(part) == "f'post.reject.{reason}'", ast.unparse(part)
                            codes.update(f"post.reject.{reason}" for reason in REJECT_REASONS)
    return {code for code in codes if code != "post.reject."}


def test_every_recorded_action_and_every_role_has_an_indonesian_label() -> None:
    from pipelines.models import Role
    from review.templating import ACTION_NAMES, ROLE_NAMES

    codes = _recorded_action_codes()
    assert {"post.confirm", "auto_forward.skipped", "harvest.source_failing", "post.reject.spam"} <= codes
    assert sorted(codes - set(ACTION_NAMES)) == []
    assert sorted(r.value for r in Role) == sorted(ROLE_NAMES)


def test_history_and_roles_read_in_bahasa_indonesia_with_the_raw_details_escaped(browserish, seeded, db) -> None:
    from pipelines import audit

    post_id = seeded["air"]
    audit.record(session=db, actor="system:auto-forward", action="auto_forward.skipped", object_type="post",
                 object_id=post_id, details={"reason": "rule for topic=kesehatan agency=* requires a reviewer",
                                             "model_version": "uji-1",
                                             "scores": {"relevance": ["keluhan", 0.97]}})
    audit.record(session=db, actor="system:masa-depan", action="kode.baru", object_type="post", object_id=post_id,
                 details={"catatan": XSS})
    db.commit()
    c = browserish()
    c.login("reviewer")
    c.post(f"/kiriman/{post_id}/konfirmasi", {"agency": "PUPR", "topic": ""})
    page = c.client.get(f"/kiriman/{post_id}").text
    history = page[page.index('id="history"'):]
    assert "Tidak diteruskan otomatis" in history
    assert "aturan untuk topik Kesehatan, OPD semua mewajibkan tinjauan humas" in history
    assert "Dikonfirmasi sebagai keluhan" in history and "dikoreksi dari OPD AIR_MINUM" in history
    assert "kode.baru" in history  # an unknown code falls back to itself
    # The raw JSON is still there, folded away, and escaped.
    assert "<details" in history and "requires a reviewer" in history.split("<details", 1)[1]
    assert "<script>alert(1)" not in page and "\\u003cscript\\u003e" in history
    assert "> auto_forward.skipped" not in history and "> post.confirm" not in history

    admin = browserish()
    admin.login("admin")
    users = admin.client.get("/admin/pengguna").text
    assert "<td>Uji reviewer</td><td>Peninjau (humas)</td>" in users
    assert '<option value="reviewer" >Peninjau (humas)</option>' in users and "(Administrator)" in users


def test_post_derived_links_are_only_ever_http_or_https(browserish, seeded, db) -> None:
    """A hostile permalink or media URL from a platform payload never becomes a link or an image source."""
    import re

    post = db.get(Post, seeded["jalan"])
    c = browserish()
    c.login("reviewer")
    hostile = ("javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "\tjavascript:alert(1)",
               "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "//evil.example/x")
    for url in hostile:
        post.url, post.media = url, [{"type": "photo", "url": url}]
        db.commit()
        for path in (f"/kiriman/{post.id}", f"/kiriman/{post.id}/aduan", "/kotak-masuk"):
            targets = re.findall(r'(?:href|src)="([^"]*)"', c.client.get(path).text)
            unsafe = [t for t in targets if not (t.startswith(("https://", "http://", "data:,"))
                                                 or (t.startswith("/") and not t.startswith("//")))]
            assert unsafe == [], (url, path)
        assert c.client.get(f"/media/{post.id}/0").status_code == 404  # the proxy fetches only http(s)
    post.url = "https://example.invalid/ok"
    db.commit()
    assert 'href="https://example.invalid/ok"' in c.client.get(f"/kiriman/{post.id}").text
