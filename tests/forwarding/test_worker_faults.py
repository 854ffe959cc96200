"""Fault tests with a real ``celery worker`` subprocess delivering to the LAPOR! stand-in over HTTP.

SQLite runs with the embedded broker (kombu's SQLAlchemy transport, the default deployment),
PostgreSQL with real Redis (production).
The stand-in ignores idempotency keys here, so only the outbox's own guarantees prevent duplicates.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.exc import IntegrityError

from jaring import db as jaring_db
from jaring.settings import Settings, reset_settings_cache
from pipelines import outbox
from pipelines.celery_app import create_app
from pipelines.models import Complaint, OutboxItem, OutboxState, Post
from tests.conftest import CeleryProcesses, wait_for
from tests.forwarding.conftest import ForwardEnv, add_complaint, queue_complaints

pytestmark = pytest.mark.slow


@pytest.fixture
def broker_url(forward_env: ForwardEnv, tmp_path: Path, request: pytest.FixtureRequest,
               monkeypatch: pytest.MonkeyPatch) -> str:
    """SQLite runs with the embedded broker (kombu's SQLAlchemy transport); PostgreSQL with real Redis."""
    if forward_env.database_url.startswith("sqlite"):
        url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    else:
        import redis

        base = request.getfixturevalue("redis_url").rsplit("/", 1)[0]
        url = f"{base}/12"
        redis.Redis.from_url(url).flushdb()
    monkeypatch.setenv("JARING_BROKER_URL", url)
    reset_settings_cache()
    return url


@pytest.fixture
def client(broker_url: str) -> Iterator[Celery]:
    """A Celery app in the test process, on the same broker, to send tasks."""
    app = create_app(Settings())
    yield app
    app.close()


def start_worker(procs: CeleryProcesses, env: ForwardEnv, broker_url: str, **extra: str):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        # tests/conftest.py's spawner drops its log file handle right away (the child keeps the fd).
        warnings.simplefilter("ignore", ResourceWarning)
        return procs.worker(database_url=env.database_url, broker_url=broker_url, queues="forward",
                            concurrency=2, extra_env={**env.env(), **extra})


def outbox_state(outbox_id: int) -> str:
    with jaring_db.session_factory()() as s:
        return str(s.scalar(sa.select(OutboxItem.state).where(OutboxItem.id == outbox_id)))


def all_sent(ids: list[int]) -> bool:
    with jaring_db.session_factory()() as s:
        states = s.scalars(sa.select(OutboxItem.state).where(OutboxItem.id.in_(ids))).all()
    return len(states) == len(ids) and set(states) == {OutboxState.SENT.value}


def test_worker_killed_after_sending_before_storing_leaves_exactly_one_complaint(
    forward_env: ForwardEnv, broker_url: str, client: Celery, celery_processes: CeleryProcesses, session
) -> None:  # type: ignore[no-untyped-def]
    state = forward_env.state
    state.honour_idempotency = False
    state.hang_next_submits, state.hang_seconds = 1, 60
    [outbox_id] = queue_complaints(session, 1)
    # The HTTP timeout (5 s) is long enough that the worker is still waiting for LAPOR! when it dies;
    # its claim lasts max(lease, 3 x timeout) = 15 s, then the sweep hands the item to the new worker.
    worker = start_worker(celery_processes, forward_env, broker_url, JARING_HTTP_TIMEOUT_SECONDS="5")
    client.send_task("jaring.forward.deliver", args=[outbox_id])
    assert state.hung.wait(60), celery_processes.logs()
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    assert len(state.reports) == 1
    assert outbox_state(outbox_id) == OutboxState.SENDING.value  # the result was never stored

    state.hang_seconds = 0
    start_worker(celery_processes, forward_env, broker_url)

    def swept_and_sent() -> bool:
        client.send_task("jaring.forward.sweep")
        return outbox_state(outbox_id) == OutboxState.SENT.value

    wait_for(swept_and_sent, timeout=60, interval=1.0, what="the sweep to take over the dead worker's claim")
    assert state.submit_requests == 1 and len(state.reports) == 1
    session.expire_all()
    [complaint] = session.scalars(sa.select(Complaint)).all()
    assert complaint.tracking_id == next(iter(state.reports))


def test_worker_rides_out_downtime_timeouts_and_refusals(
    forward_env: ForwardEnv, broker_url: str, client: Celery, celery_processes: CeleryProcesses, session
) -> None:  # type: ignore[no-untyped-def]
    state = forward_env.state
    state.honour_idempotency = False
    ids = queue_complaints(session, 12)
    invalid = add_complaint(session, title="  ")
    dead_id = outbox.enqueue(session=session, complaint=invalid, actor="rina").id
    session.commit()

    state.go_down(3.0)
    state.timeout_rate, state.timeout_seconds = 0.3, 1.0  # once back, some answers arrive too late
    start_worker(celery_processes, forward_env, broker_url)
    for outbox_id in [*ids, dead_id]:
        client.send_task("jaring.forward.deliver", args=[outbox_id])

    wait_for(lambda: outbox_state(dead_id) == OutboxState.DEAD.value, timeout=60, what="the 4xx to dead-letter")
    wait_for(lambda: all_sent(ids), timeout=90, interval=0.5, what="every complaint delivered")
    counts = state.count_by_ref()
    assert len(counts) == 12 and set(counts.values()) == {1}, counts
    # Nothing is retried forever: with everything sent or dead, a sweep sends LAPOR! nothing more.
    requests_before = state.requests
    client.send_task("jaring.forward.sweep")
    time.sleep(2.0)
    assert state.requests == requests_before
    assert outbox_state(dead_id) == OutboxState.DEAD.value


def test_two_reviewers_confirming_the_same_post_at_once_make_one_complaint(
    forward_env: ForwardEnv, session
) -> None:  # type: ignore[no-untyped-def]
    post = Post(platform="twitter", external_id="same-post", text="Air PDAM mati 3 hari di Maulafa", raw={},
                status="queued")
    session.add(post)
    session.commit()
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def reviewer(name: str) -> None:
        with jaring_db.session_factory()() as s:
            complaint = Complaint(post_id=post.id, title="Air PDAM mati", body="Air PDAM mati 3 hari di Maulafa",
                                  instansi="PDAM")
            s.add(complaint)
            barrier.wait()
            try:
                s.flush()
                item = outbox.enqueue(session=s, complaint=complaint, actor=name)
                s.commit()
                outcomes.append(item.id)
            except IntegrityError:
                s.rollback()
                outcomes.append("conflict")

    threads = [threading.Thread(target=reviewer, args=(n,)) for n in ("rina", "yosef")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(map(str, outcomes))[-1] == "conflict" and len(outcomes) == 2
    [outbox_id] = [o for o in outcomes if o != "conflict"]
    # Both reviewers' "deliver now" requests arrive; LAPOR! gets one complaint.
    with threading.Semaphore(2):
        results = []
        workers = [threading.Thread(target=lambda: results.append(outbox.deliver(outbox_id=outbox_id).outcome))
                   for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
    assert sorted(results) == ["sent", "skipped"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 1
    assert len(forward_env.state.reports) == 1


def test_two_reviewers_composing_at_once_reach_lapor_once_through_the_worker(
    forward_env: ForwardEnv, broker_url: str, client: Celery, celery_processes: CeleryProcesses, session
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import OperationalError

    from classifier.city import load_city
    from jaring.settings import get_settings
    from pipelines import review_actions
    from pipelines.models import User

    forward_env.state.honour_idempotency = False
    city = load_city(get_settings().city_file)
    post = Post(platform="facebook", external_id="fb-race", text="Sampah menumpuk di Pasir Panjang, bau sekali",
                raw={}, status="queued", relevance="keluhan", relevance_score=0.9, topic="sampah", topic_score=0.8,
                agency="LINGKUNGAN_HIDUP", agency_score=0.7)
    reviewers = [User(username=name, password_hash="-", role="reviewer") for name in ("rina", "yosef")]
    session.add_all([post, *reviewers])
    session.commit()
    start_worker(celery_processes, forward_env, broker_url)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def compose(user_id: int) -> None:
        with jaring_db.session_factory()() as s:
            user = s.get(User, user_id)
            form = review_actions.ComplaintForm(
                title="Sampah menumpuk di Pasir Panjang", body="Sampah menumpuk di Pasir Panjang, bau sekali.",
                category="Lingkungan Hidup", topic="sampah", agency="LINGKUNGAN_HIDUP", instansi="DLHK Kota Kupang")
            barrier.wait()
            try:
                composed = review_actions.compose_complaint(session=s, post_id=post.id, user=user, form=form,
                                                            city=city)
                s.commit()
            except (review_actions.ActionError, IntegrityError, OperationalError) as exc:
                s.rollback()
                outcomes.append(type(exc).__name__)
                return
            outcomes.append(composed.outbox_id)
        # Both reviewers' pages ask for delivery right away; so does the one that lost, by mistake.
        client.send_task("jaring.forward.deliver", args=[composed.outbox_id])
        client.send_task("jaring.forward.deliver", args=[composed.outbox_id])

    threads = [threading.Thread(target=compose, args=(u.id,)) for u in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(outcomes) == 2 and len(winners) == 1, outcomes
    wait_for(lambda: all_sent(winners), timeout=60, what="the complaint delivered")
    time.sleep(1.0)  # let the duplicate delivery request run too
    assert session.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 1
    assert len(forward_env.state.reports) == 1 and forward_env.state.submit_requests == 1
