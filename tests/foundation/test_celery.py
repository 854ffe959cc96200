"""Celery policy, and real worker/beat processes on the embedded broker and on real Redis."""

from __future__ import annotations

import sqlalchemy as sa

from jaring.settings import Settings
from pipelines.celery_app import QUEUES, beat_schedule, celery_config, create_app
from pipelines.models import Classification, Post
from tests.conftest import CeleryProcesses, wait_for

# A closed local port: if anything tried to reach LAPOR! it would fail here, never on the internet.
OFFLINE = {
    "JARING_LAPOR_API_BASE": "http://127.0.0.1:9",
    "JARING_TWITTER_API_BASE": "http://127.0.0.1:9",
    "JARING_GRAPH_API_BASE": "http://127.0.0.1:9",
}


def test_policy_is_json_only_late_ack_and_routed_by_queue(tmp_path) -> None:
    conf = celery_config(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0"))
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_time_limit"] > conf["task_soft_time_limit"] > 0
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]
    app = create_app(Settings(data_dir=tmp_path))
    app.loader.import_default_modules()
    for queue in QUEUES:
        names = [n for n in app.tasks if n.startswith(f"jaring.{queue}.")]
        assert names, f"no task on queue {queue}"
        for name in names:
            assert app.amqp.router.route({}, name)["queue"].name == queue


def test_embedded_default_broker_needs_no_server(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert celery_config(settings)["broker_url"] == settings.broker_url


def test_beat_schedule_comes_from_every_tasks_module(tmp_path) -> None:
    schedule = beat_schedule(Settings(data_dir=tmp_path, classify_sweep_seconds=7))
    assert schedule["classify-sweep"]["schedule"] == 7
    tasks = {entry["task"] for entry in schedule.values()}
    assert any(t.startswith("jaring.harvest.") for t in tasks)
    assert any(t.startswith("jaring.forward.") for t in tasks)


def _add_post(url: str, text: str) -> int:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        post_id = conn.execute(
            sa.insert(Post)
            .values(
                platform="twitter",
                external_id="t-1",
                text=text,
                raw={"id": "t-1"},
                status="new",
                kind="tweet",
                source_key="",
                author_id="",
                author_handle="",
                author_name="",
                lang="",
                url="",
                media=[],
                referenced=[],
                version=1,
                content_hash="",
                duplicate_reason="",
                priority=0.0,
                harvested_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
            .returning(Post.id)
        ).scalar_one()
    engine.dispose()
    return post_id


def _classification(url: str, post_id: int) -> tuple[str, str] | None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(Classification.relevance, Post.status)
            .join(Post, Post.id == Classification.post_id)
            .where(Classification.post_id == post_id)
        ).first()
    engine.dispose()
    return tuple(row) if row else None


def test_real_worker_and_beat_classify_with_no_server(
    sqlite_url: str, tmp_path, celery_processes: CeleryProcesses
) -> None:
    """The embedded default: kombu's SQLAlchemy transport on a SQLite file; beat queues, the worker classifies."""
    post_id = _add_post(sqlite_url, "@PemkotKupang jalan di Oebufu rusak parah, tolong diperbaiki")
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    env = {**OFFLINE, "JARING_CLASSIFY_SWEEP_SECONDS": "1"}
    celery_processes.worker(database_url=sqlite_url, broker_url=broker, queues="classify", extra_env=env)
    celery_processes.beat(database_url=sqlite_url, broker_url=broker, extra_env=env)
    result = wait_for(
        lambda: _classification(sqlite_url, post_id), timeout=90, what="beat + worker to classify"
    )
    relevance, status = result
    assert relevance in ("keluhan", "respon", "bukan")
    assert status in ("queued", "confirmed"), celery_processes.logs()[-2000:]


def test_real_worker_on_redis_classifies_a_sent_task(
    postgres_url: str, redis_url: str, tmp_path, celery_processes: CeleryProcesses
) -> None:
    """Production shape: Redis broker, PostgreSQL database, a task sent by name to the classify queue."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    post_id = _add_post(postgres_url, "Air PDAM di Namosain sonde mengalir su satu minggu")
    celery_processes.worker(
        database_url=postgres_url, broker_url=redis_url, queues="classify", extra_env=OFFLINE
    )
    producer = create_app(Settings(data_dir=tmp_path, broker_url=redis_url))
    producer.send_task("jaring.classify.posts", args=[[post_id]])
    relevance, status = wait_for(
        lambda: _classification(postgres_url, post_id), timeout=60, what="worker on Redis"
    )
    assert relevance in ("keluhan", "respon", "bukan")
    assert status in ("queued", "confirmed")


def test_classify_sweep_queues_each_stuck_post_once_per_interval(configured_db, monkeypatch) -> None:
    """A backlog or a failing classifier must not get one more duplicate message per post every sweep."""
    from datetime import timedelta

    from jaring.db import session_scope
    from pipelines.models import aware, utcnow
    from pipelines.tasks import classify as tasks

    published: list[list[int]] = []
    monkeypatch.setattr(tasks.classify_posts, "delay", lambda ids: published.append(list(ids)))
    with session_scope() as session:
        posts = [Post(platform="twitter", external_id=f"s{n}", text=f"jalan rusak {n}", raw={}) for n in range(3)]
        session.add_all(posts)
        session.flush()
        ids = [p.id for p in posts]
        session.add(Post(platform="twitter", external_id="done", text="sudah", raw={}, status="queued"))

    tasks.schedule_classification(ids[:1])  # the harvest queued the first post just now
    assert published == [ids[:1]]
    assert tasks.classify_pending() == 2  # only the two nobody queued
    assert published[-1] == ids[1:]
    assert tasks.classify_pending() == 0  # every message is still fresh: nothing is queued twice
    assert len(published) == 2

    with session_scope() as session:  # the first post's message was lost long ago; the second got classified
        session.get(Post, ids[0]).classify_queued_at = utcnow() - timedelta(minutes=11)
        session.get(Post, ids[1]).status = "queued"
    assert tasks.classify_pending() == 1
    assert published[-1] == ids[:1]
    with session_scope() as session:
        queued_at = aware(session.get(Post, ids[0]).classify_queued_at)
        assert queued_at is not None and utcnow() - queued_at < timedelta(minutes=1)  # marked again
