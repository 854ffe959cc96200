"""The harvest task in a real Celery worker: a task sent by name harvests, then queues classification."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from jaring.settings import Settings
from pipelines.celery_app import create_app
from pipelines.models import Classification, Post
from standins.twitter import TwitterState
from tests.conftest import CeleryProcesses, wait_for
from tests.harvester.conftest import X_TOKEN, HarvestEnv


def _counts(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        posts = conn.scalar(sa.select(sa.func.count()).select_from(Post))
        classified = conn.scalar(sa.select(sa.func.count()).select_from(Classification))
    engine.dispose()
    return int(posts or 0), int(classified or 0)


@pytest.mark.slow
def test_worker_harvests_then_queues_classification(
    harvest_env: HarvestEnv,
    x_state: TwitterState,
    configured_db: str,
    tmp_path,
    celery_processes: CeleryProcesses,
    redis_url: str,
) -> None:
    import os

    import redis

    redis.Redis.from_url(redis_url).flushdb()
    for i in range(12):
        x_state.add_tweet(
            f"@PemkotKupang jalan di Oebufu rusak parah nomor {i}, tolong diperbaiki", author=f"w{i}"
        )
    env = {
        k: os.environ[k] for k in ("JARING_SOURCES_FILE", "JARING_TWITTER_API_BASE", "JARING_GRAPH_API_BASE")
    }
    env |= {"JARING_TWITTER_BEARER_TOKEN": X_TOKEN, "JARING_LAPOR_API_BASE": "http://127.0.0.1:9"}
    celery_processes.worker(
        database_url=configured_db, broker_url=redis_url, queues="harvest,classify", extra_env=env
    )
    producer = create_app(Settings(data_dir=tmp_path, broker_url=redis_url))
    producer.send_task("jaring.harvest.run_source", args=["x-mentions"])
    # Harvested by the worker, then classification handed to the classify queue (what the classifier
    # then does is the classify stage's business and tested there).
    wait_for(lambda: _counts(configured_db)[0] == 12, timeout=90, what="the worker to harvest")
    wait_for(
        lambda: "Task jaring.classify.posts[" in celery_processes.logs(),
        timeout=60,
        what="classification queued by the harvest task",
    )
    assert "jaring.harvest.run_source" in celery_processes.logs()
    assert _counts(configured_db)[0] == 12
