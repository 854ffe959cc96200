"""The sources health page in the web app (admins only) and its on/off switch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from pipelines.harvest import run_source
from pipelines.models import AuditLog
from review.app import create_app
from standins.twitter import TwitterState
from tests.harvester.conftest import HarvestEnv
from tests.review.conftest import Browserish, app_settings, seed


@pytest.fixture
def web(harvest_env: HarvestEnv, configured_db: str) -> Iterator[FastAPI]:
    seed(configured_db)
    application = create_app(app_settings(configured_db))
    yield application
    application.state.engine.dispose()


def test_sources_page_shows_health_and_switches_a_source(
    web: FastAPI, harvest_env: HarvestEnv, x_state: TwitterState
) -> None:
    x_state.add_tweet("@PemkotKupang jalan <b>rusak</b>", author="w1")
    x_state.expired_tokens.add("x-test-token")
    assert run_source(source_key="x-mentions").status == "failed"
    reviewer = Browserish(web)
    reviewer.login("reviewer")
    assert reviewer.client.get("/sumber").status_code == 403
    admin = Browserish(web)
    admin.login("admin")
    page = admin.client.get("/sumber")
    assert page.status_code == 200
    assert "Bermasalah" in page.text and "HTTP 401" in page.text and "x-search" in page.text
    admin.token = admin.token or ""
    admin.refresh_token("/sumber")
    assert admin.post("/sumber/x-mentions/nonaktifkan").status_code == 303
    assert run_source(source_key="x-mentions").status == "disabled"
    assert admin.post("/sumber/x-mentions/aktifkan").status_code == 303
    x_state.expired_tokens.clear()
    assert run_source(source_key="x-mentions").status == "ok"
    with web.state.session_factory() as s:
        actions = list(s.scalars(sa.select(AuditLog.action).where(AuditLog.object_id == "x-mentions")))
    assert actions == ["harvest.source_failing", "source.disabled", "source.enabled"]
    # Without the CSRF token the switch is refused.
    assert admin.client.post("/sumber/x-mentions/nonaktifkan").status_code in (400, 403)


def test_sources_page_shows_the_last_runs_notices_and_restarts_a_stopped_source_in_one_click(
    web: FastAPI, harvest_env: HarvestEnv, x_state: TwitterState
) -> None:
    for n in range(15):
        x_state.add_tweet(f"@PemkotKupang lampu jalan mati di Oepura nomor {n}", author=f"w{n}")
    x_state.repeat_next_token = 5  # X hands back the same cursor: the run stops there with a gap notice
    assert run_source(source_key="x-mentions").status == "ok"
    admin = Browserish(web)
    admin.login("admin")
    page = admin.client.get("/sumber").text
    row = page.split("<td>x-mentions</td>", 1)[1].split("</tr>", 1)[0]
    assert "berhasil" in row and "X repeated a pagination token" in row
    assert "Aktifkan kembali" not in row  # healthy: nothing to restart

    x_state.expired_tokens.add("x-test-token")
    assert run_source(source_key="x-mentions").status == "failed"
    row = admin.client.get("/sumber").text.split("<td>x-mentions</td>", 1)[1].split("</tr>", 1)[0]
    assert "gagal" in row and "Aktifkan kembali" in row and "Nonaktifkan" in row
    x_state.expired_tokens.clear()
    admin.refresh_token("/sumber")
    assert admin.post("/sumber/x-mentions/aktifkan").status_code == 303  # the one click
    assert run_source(source_key="x-mentions").status == "ok"
