"""The review app in a real browser (Playwright driving Debian's Chromium) against a SQLite database.

Every test records every request the page makes and every JavaScript dialog: nothing may leave the
app's origin and no dialog may open (the hostile post tries to run ``alert``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pipelines.models import Complaint, OutboxItem, Post
from review.app import create_app
from standins.server import serve_app
from tests.conftest import IN_CI
from tests.review.conftest import PASSWORD, XSS, app_settings, seed

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        if IN_CI:
            pytest.fail("Chromium is not installed at /usr/bin/chromium")
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


class Site:
    """A running app plus a page that records requests and dialogs."""

    def __init__(self, browser: object, base_url: str, ids: dict[str, int]) -> None:
        self.base_url = base_url
        self.ids = ids
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(base_url=base_url)  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: object) -> None:
        self.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    def login(self, username: str) -> None:
        self.page.goto("/masuk")
        self.page.fill('input[name="username"]', username)
        self.page.fill('input[name="password"]', PASSWORD)
        self.page.click('button:has-text("Masuk")')
        self.page.wait_for_load_state()

    def logout(self) -> None:
        self.page.click('button:has-text("Keluar")')
        self.page.wait_for_url("**/masuk")

    def foreign_requests(self) -> list[str]:
        allowed = (self.base_url + "/", "data:")
        return [u for u in self.requests if not u.startswith(allowed)]


@pytest.fixture
def site(browser: object, sqlite_url: str) -> Iterator[Site]:
    ids = seed(sqlite_url)
    app = create_app(app_settings(sqlite_url))
    server = serve_app(app)
    s = Site(browser, server.base_url, ids)
    try:
        yield s
    finally:
        s.context.close()
        server.stop()
        app.state.engine.dispose()
    assert any(u.endswith("/static/app.js") for u in s.requests), "request recording did not work"
    assert s.dialogs == [], f"a dialog opened: {s.dialogs}"
    assert s.foreign_requests() == [], f"requests left the app's origin: {s.foreign_requests()}"


def _db(sqlite_url: str) -> sa.Engine:
    return sa.create_engine(sqlite_url)


def test_humas_flow_filter_open_confirm_compose_bulk_reject_dashboard(site: Site, sqlite_url: str) -> None:
    page, ids = site.page, site.ids
    site.login("reviewer")
    page.wait_for_url("**/kotak-masuk")
    assert page.locator("#inbox .item").count() == 6

    # Filter: only Facebook posts.
    page.select_option('select[name="platform"]', "facebook")
    page.click('button:has-text("Terapkan")')
    page.wait_for_url("**platform=facebook**")
    shown = page.locator("#inbox .item").evaluate_all("items => items.map(i => Number(i.dataset.id))")
    assert sorted(shown) == sorted([ids["air"], ids["jalan2"]])

    # Open a post, confirm it with a corrected OPD.
    page.click(f'#inbox .item[data-id="{ids["air"]}"] a.text')
    page.wait_for_url(f"**/kiriman/{ids['air']}**")
    assert "Air PDAM di Maulafa" in page.inner_text("#post-text")
    page.select_option("#confirm-agency", "PUPR")
    page.click("#confirm-button")
    page.wait_for_url("**/kotak-masuk**")
    assert "dikonfirmasi" in page.inner_text(".flash")
    engine = _db(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(Post.status, Post.agency).where(Post.id == ids["air"])).one() == (
            "confirmed", "PUPR")

    # Compose and queue a complaint from another post (prefilled; edit the title).
    page.goto(f"/kiriman/{ids['jalan']}")
    page.click("#compose-link")
    page.wait_for_url(f"**/kiriman/{ids['jalan']}/aduan")
    assert page.input_value("#instansi") == "Dinas Pekerjaan Umum dan Penataan Ruang Kota Kupang"
    assert page.is_checked("#confidential") and not page.is_checked("#anonymous")
    page.fill("#title", "Jalan berlubang besar di dekat Pasar Oebobo")
    page.click("#queue-button")
    page.wait_for_url(f"**/kiriman/{ids['jalan']}")
    assert "diantrikan" in page.inner_text(".flash")
    assert "Aduan dibuat" in page.inner_text("#history")
    with engine.connect() as conn:
        title, complaint_id = conn.execute(sa.select(Complaint.title, Complaint.id)).one()
        assert title == "Jalan berlubang besar di dekat Pasar Oebobo"
        assert conn.execute(sa.select(OutboxItem.complaint_id)).scalar_one() == complaint_id

    # Bulk reject two posts as spam.
    page.goto("/kotak-masuk")
    for name in ("xss", "bukan"):
        page.check(f'#inbox .item[data-id="{ids[name]}"] input[name="ids"]')
    page.select_option('select[name="action"]', "reject:spam")
    page.click("#bulk-submit")
    page.wait_for_load_state()
    assert "2 kiriman diproses" in page.inner_text(".flash")
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(Post.id, Post.status)).all())
    assert statuses[ids["xss"]] == statuses[ids["bukan"]] == "rejected"

    # Keyboard: j selects the first row, r rejects it.
    first = page.locator("#inbox .item").first.get_attribute("data-id")
    page.keyboard.press("j")
    assert page.locator("#inbox .item.current").get_attribute("data-id") == first
    with page.expect_navigation():
        page.keyboard.press("r")
    with engine.connect() as conn:
        assert conn.execute(sa.select(Post.status).where(Post.id == int(first))).scalar_one() == "rejected"
    engine.dispose()

    # The dashboard for a leader.
    site.logout()
    site.login("viewer")
    page.wait_for_url("**/dasbor")
    assert page.locator("svg").count() >= 5
    assert page.inner_text("#kpi-complaints") == "1"


def test_hostile_post_renders_as_text_and_runs_nothing(site: Site) -> None:
    page = site.page
    site.login("reviewer")
    page.goto("/kotak-masuk")
    row = page.locator(f'#inbox .item[data-id="{site.ids["xss"]}"] a.text')
    assert row.inner_text() == XSS
    page.goto(f"/kiriman/{site.ids['xss']}")
    assert page.inner_text("#post-text") == XSS
    assert page.locator('img[src="x"]').count() == 0 and page.locator("main script").count() == 0
    page.wait_for_timeout(300)  # give an injected handler the chance to fire
    assert site.dialogs == []


def test_post_without_csrf_token_is_refused_in_the_browser(site: Site, sqlite_url: str) -> None:
    page = site.page
    site.login("reviewer")
    status = page.evaluate(
        """async (id) => {
            const body = new URLSearchParams({reason: "spam"});
            const r = await fetch(`/kiriman/${id}/tolak`, {method: "POST", body});
            return r.status;
        }""", site.ids["jalan"])
    assert status == 403
    engine = _db(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(Post.status).where(Post.id == site.ids["jalan"])).scalar_one() == "queued"
    engine.dispose()


def test_viewer_cannot_reach_reviewer_actions(site: Site) -> None:
    page = site.page
    site.login("viewer")
    page.wait_for_url("**/dasbor")
    nav = page.inner_text("header nav")
    assert "Dasbor" in nav and "Kotak masuk" not in nav and "Pengguna" not in nav
    for path in ("/kotak-masuk", f"/kiriman/{site.ids['jalan']}", f"/kiriman/{site.ids['jalan']}/aduan"):
        response = page.goto(path)
        assert response.status == 403 and "Akses ditolak" in page.inner_text("h1")


def test_keyboard_moves_opens_composer_and_confirms(site: Site, sqlite_url: str) -> None:
    page, ids = site.page, site.ids
    site.login("reviewer")
    page.wait_for_url("**/kotak-masuk")
    order = page.locator("#inbox .item").evaluate_all("items => items.map(i => i.dataset.id)")
    for key in ("j", "j", "j", "k"):
        page.keyboard.press(key)
    assert page.locator("#inbox .item.current").get_attribute("data-id") == order[1]
    page.keyboard.press("x")
    assert page.is_checked(f'#inbox .item[data-id="{order[1]}"] input[name="ids"]')
    with page.expect_navigation():
        page.keyboard.press("e")
    assert page.url.endswith(f"/kiriman/{order[1]}/aduan")
    page.goto(f"/kiriman/{ids['sampah']}")
    with page.expect_navigation():
        page.keyboard.press("c")
    engine = _db(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(Post.status).where(Post.id == ids["sampah"])).scalar_one() == "confirmed"
    engine.dispose()
