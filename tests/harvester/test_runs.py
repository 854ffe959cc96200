"""Harvest runs: leases (no overlap, crash-safe), a worker killed mid-run, config re-read, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from jaring.settings import get_settings
from pipelines.harvest import run_source
from pipelines.models import AuditLog, Checkpoint, HarvestRun, Post, SourceState
from standins.twitter import TwitterState
from tests.harvester.conftest import HarvestEnv


def _mention(state: TwitterState, n: int) -> list[str]:
    return [
        state.add_tweet(f"@PemkotKupang laporan {i}: air sonde jalan di Alak", author=f"w{i}")
        for i in range(n)
    ]


def _count(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(sa.select(sa.func.count()).select_from(Post)) or 0)


def test_two_runs_of_one_source_never_overlap(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    ids = _mention(x_state, 40)
    x_state.faults.delay_seconds = 0.15
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", run_source(source_key="x-mentions")))
    first.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        session.expire_all()
        state = session.get(SourceState, "x-mentions")
        if state is not None and state.lease_owner:
            break
        time.sleep(0.02)
    second = run_source(source_key="x-mentions")
    first.join(30)
    assert second.status == "locked"
    assert results["first"].status == "ok"
    assert sorted(session.scalars(sa.select(Post.external_id))) == sorted(ids)
    assert session.scalar(sa.select(sa.func.count()).select_from(HarvestRun)) == 1
    session.expire_all()
    assert session.get(SourceState, "x-mentions").lease_owner == ""


@pytest.mark.slow
def test_worker_killed_mid_run_loses_and_duplicates_nothing(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    ids = _mention(x_state, 120)
    x_state.faults.delay_seconds = 0.25
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pipelines.harvest import run_source; run_source(source_key='x-mentions')",
        ],
        env=dict(os.environ),
        cwd=str(get_settings().sources_file.parent.parent if False else os.getcwd()),
    )
    try:
        deadline = time.monotonic() + 60
        while _count(session) < 30 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        assert worker.poll() is None, "the worker finished before it could be killed"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    stored_before = _count(session)
    assert 30 <= stored_before < 120
    assert session.scalar(sa.select(sa.func.count()).select_from(Checkpoint)) == 0  # not moved: not finished
    x_state.faults.delay_seconds = 0
    # The dead worker's lease still holds the source...
    assert run_source(source_key="x-mentions").status == "locked"
    # ...until it expires (lease_seconds later); then a new run takes over and finishes the job.
    later = time.time() + 901
    summary = run_source(source_key="x-mentions", clock=lambda: later)
    assert summary.status == "ok"
    stored = list(session.scalars(sa.select(Post.external_id)))
    assert sorted(stored) == sorted(ids) and len(stored) == len(set(stored))
    assert len(summary.new_post_ids) == 120 - stored_before
    assert session.scalar(sa.select(Checkpoint.value)) == max(ids, key=int)
    statuses = list(session.scalars(sa.select(HarvestRun.status).order_by(HarvestRun.id)))
    assert statuses == ["abandoned", "ok"]


def test_switched_off_source_returns_without_calling_the_platform(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    _mention(x_state, 3)
    harvest_env.set("x-mentions", enabled=False)
    assert run_source(source_key="x-mentions").status == "disabled"
    assert x_state.faults.requests == 0
    harvest_env.set("x-mentions", enabled=True)  # no restart: the next job reads the file again
    assert run_source(source_key="x-mentions").status == "ok"
    assert _count(session) == 3


def test_missing_credential_marks_source_failing(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    harvest_env.set("x-mentions", credentials_env="JARING_TEST_UNSET_TOKEN")
    summary = run_source(source_key="x-mentions")
    assert summary.status == "failed"
    state = session.get(SourceState, "x-mentions")
    assert state is not None and state.health == "failing" and "JARING_TEST_UNSET_TOKEN" in state.last_error
    assert "x-test-token" not in json.dumps(summary.as_dict())


def test_cli_harvest_once_status_and_enable_after_stop(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    from jaring.cli import app

    runner = CliRunner()
    _mention(x_state, 4)
    result = runner.invoke(app, ["harvest", "x-mentions", "--once"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["new_post_ids"] == 4
    x_state.expired_tokens.add("x-test-token")
    assert runner.invoke(app, ["harvest", "x-mentions", "--once"]).exit_code == 1
    status = json.loads(runner.invoke(app, ["sources", "status", "--json"]).output)
    row = next(r for r in status if r["key"] == "x-mentions")
    assert row["health"] == "failing" and "401" in row["last_error"] and row["last_run_status"] == "failed"
    x_state.expired_tokens.clear()
    assert runner.invoke(app, ["sources", "disable", "x-mentions"]).exit_code == 0
    assert "enabled: false" in harvest_env.path.read_text()
    assert run_source(source_key="x-mentions").status == "disabled"
    assert runner.invoke(app, ["sources", "enable", "x-mentions"]).exit_code == 0
    assert run_source(source_key="x-mentions").status == "ok"
    actions = list(session.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)))
    assert actions == ["harvest.source_failing", "source.disabled", "source.enabled"]


def test_broken_sources_file_is_reported_not_raised(harvest_env: HarvestEnv, x_state: TwitterState) -> None:
    harvest_env.path.write_text("sources: [ {key: x, platform: myspace} ]")
    summary = run_source(source_key="x-mentions")
    assert summary.status == "config_error" and "platform must be one of" in summary.errors[0]
    assert x_state.faults.requests == 0


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"enabled": "false"}, "sources[0].enabled"),  # quoted: a truthy string, the source would run
        ({"schedule_seconds": "5m"}, "sources[0].schedule_seconds"),
        ({"page_size": "50"}, "sources[0].page_size"),
        ({"max_wait_seconds": True}, "sources[0].max_wait_seconds"),
        ({"credentials_env": ["A", "B"]}, "sources[0].credentials_env"),
    ],
)
def test_a_mistyped_source_setting_is_a_config_error_not_a_run(
    harvest_env: HarvestEnv, x_state: TwitterState, changes: dict, where: str
) -> None:
    _mention(x_state, 2)
    harvest_env.set("x-mentions", **changes)
    summary = run_source(source_key="x-mentions")
    assert summary.status == "config_error" and where in summary.errors[0], summary
    assert x_state.faults.requests == 0


@pytest.mark.parametrize(
    "name",
    [
        "JARING_LAPOR_API_TOKEN",
        "JARING_SECRET_KEY",
        "JARING_META_APP_SECRET",
        "JARING_META_VERIFY_TOKEN",
        "JARING_DATABASE_URL",
        "JARING_BROKER_URL",
        "HOME",
    ],
)
def test_credentials_env_naming_another_secret_is_a_config_error_and_nothing_is_sent(
    harvest_env: HarvestEnv, x_state: TwitterState, name: str
) -> None:
    _mention(x_state, 2)
    if name not in os.environ:  # JARING_DATABASE_URL already holds the test database's URL
        harvest_env.setenv(name, "not-for-a-social-platform")
    harvest_env.set("x-mentions", credentials_env=name)
    summary = run_source(source_key="x-mentions")
    assert summary.status == "config_error"
    assert "sources[0].credentials_env" in summary.errors[0] and "'x-mentions'" in summary.errors[0]
    assert name in summary.errors[0]
    assert x_state.request_log == []  # the secret never left for X


def test_credentials_env_may_name_a_platform_token_of_its_own(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    _mention(x_state, 2)
    harvest_env.setenv("JARING_X_DINKES_TOKEN", "x-test-token")
    harvest_env.set("x-mentions", credentials_env="JARING_X_DINKES_TOKEN")
    assert run_source(source_key="x-mentions").status == "ok"
    assert _count(session) == 2
