"""The harvest dispatcher: beat's one harvest entry queues each due source once, from the file read fresh."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring.settings import Settings
from pipelines.harvest import acquire_lease, claim_due_sources
from pipelines.models import HarvestRun, SourceState
from pipelines.sources import parse_sources
from pipelines.tasks.harvest import beat_schedule
from standins.twitter import TwitterState
from tests.conftest import CeleryProcesses, wait_for
from tests.harvester.conftest import X_TOKEN, HarvestEnv

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

SOURCES = {
    "defaults": {"schedule_seconds": 60},
    "sources": [
        {"key": "x-mentions", "platform": "twitter", "accounts": [{"id": "1"}]},
        {"key": "x-search", "platform": "twitter", "queries": ["kupang"]},
        {"key": "fb", "platform": "facebook", "page_ids": ["2"], "schedule_seconds": 300},
        {"key": "ig", "platform": "instagram", "ig_account_ids": ["3"], "enabled": False},
    ],
}


def _claim(session: Session, seconds: float, sources: dict | None = None) -> list[str]:
    due = claim_due_sources(
        session=session, sources=parse_sources(sources or SOURCES), now=T0 + timedelta(seconds=seconds)
    )
    session.commit()
    return [s.key for s in due]


def _set(session: Session, key: str, **values: object) -> None:
    session.execute(sa.update(SourceState).where(SourceState.source_key == key).values(**values))
    session.commit()


def test_beat_has_one_harvest_entry_the_dispatcher() -> None:
    schedule = beat_schedule(Settings(harvest_dispatch_seconds=5))
    assert schedule == {"harvest-dispatch": {"task": "jaring.harvest.dispatch", "schedule": 5.0}}


def test_each_due_source_is_queued_once_per_interval(session: Session) -> None:
    assert _claim(session, 0) == ["x-mentions", "x-search", "fb"]  # ig is switched off
    assert _claim(session, 10) == []  # queued, waiting for a worker: not queued again
    _set(session, "x-mentions", last_run_at=T0 + timedelta(seconds=20))  # a worker started it
    # x-search's message was lost (never started): queued again once its 60 s have passed; fb has 300 s.
    assert _claim(session, 61) == ["x-search"]
    assert _claim(session, 79) == []  # x-mentions last started at +20: due at +80
    assert _claim(session, 80) == ["x-mentions"]
    assert _claim(session, 120) == []
    assert _claim(session, 300) == ["x-mentions", "x-search", "fb"]  # nothing started: every message lost


def test_running_backing_off_and_stopped_sources_are_not_queued(session: Session) -> None:
    assert _claim(session, 0) == ["x-mentions", "x-search", "fb"]
    assert acquire_lease(session=session, source_key="x-mentions", owner="w1", now=T0, seconds=900)
    _set(session, "x-search", backoff_until=T0 + timedelta(seconds=500))
    _set(session, "fb", health="stopped")
    assert _claim(session, 400) == []
    assert _claim(session, 600) == ["x-search"]
    assert _claim(session, 640) == []
    # x-mentions: the lease of a crashed worker expired; x-search: its message from +600 never started.
    assert _claim(session, 901) == ["x-mentions", "x-search"]


def test_a_source_added_or_rescheduled_in_the_file_counts_at_the_next_tick(session: Session) -> None:
    assert _claim(session, 0) == ["x-mentions", "x-search", "fb"]
    for key in ("x-mentions", "x-search", "fb"):
        _set(session, key, last_run_at=T0)
    changed = {
        "defaults": {"schedule_seconds": 60},
        "sources": [
            *SOURCES["sources"][:2],
            {"key": "fb", "platform": "facebook", "page_ids": ["2"], "schedule_seconds": 30},
            {"key": "ig", "platform": "instagram", "ig_account_ids": ["3"]},  # switched on
            {"key": "x-new", "platform": "twitter", "queries": ["oebobo"]},
        ],
    }
    assert _claim(session, 30, changed) == ["fb", "ig", "x-new"]


@pytest.mark.slow
def test_real_beat_picks_up_a_source_added_while_it_runs(
    harvest_env: HarvestEnv,
    x_state: TwitterState,
    configured_db: str,
    celery_processes: CeleryProcesses,
    redis_url: str,
) -> None:
    """Beat and a worker on Redis: a source added to the file is harvested without restarting beat."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    x_state.add_tweet("@PemkotKupang lampu jalan di Oebobo mati sudah seminggu", author="w1")
    harvest_env.sources = [s for s in harvest_env.sources if s["key"] == "x-mentions"]
    harvest_env.write()
    env = {
        k: os.environ[k] for k in ("JARING_SOURCES_FILE", "JARING_TWITTER_API_BASE", "JARING_GRAPH_API_BASE")
    }
    env |= {
        "JARING_TWITTER_BEARER_TOKEN": X_TOKEN,
        "JARING_HARVEST_DISPATCH_SECONDS": "1",
        "JARING_CLASSIFY_SWEEP_SECONDS": "3600",
        "JARING_LAPOR_API_BASE": "http://127.0.0.1:9",
    }
    celery_processes.worker(database_url=configured_db, broker_url=redis_url, queues="harvest", extra_env=env)
    celery_processes.beat(database_url=configured_db, broker_url=redis_url, extra_env=env)

    def runs() -> list[str]:
        engine = sa.create_engine(configured_db)
        with engine.connect() as conn:
            keys = list(conn.scalars(sa.select(HarvestRun.source_key).where(HarvestRun.status != "running")))
        engine.dispose()
        return sorted(keys)

    wait_for(
        lambda: runs() == ["x-mentions"],
        timeout=60,
        what=f"beat to harvest x-mentions\n{celery_processes.logs()[-3000:]}",
    )
    harvest_env.sources.append({"key": "x-search", "platform": "twitter", "queries": ["oebobo"]})
    harvest_env.write()
    wait_for(lambda: "x-search" in runs(), timeout=60, what="the added source to be harvested")
    time.sleep(3)
    # One tick a second for several seconds, yet each source ran once: its 60 s have not passed.
    assert runs() == ["x-mentions", "x-search"], celery_processes.logs()[-3000:]
