"""Tasks of the ``classify`` queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from jaring.db import session_scope
from jaring.settings import Settings, get_settings
from pipelines import classify
from pipelines.celery_app import app

CHUNK = 200


@app.task(name="jaring.classify.posts", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def classify_posts(post_ids: list[int]) -> dict[str, Any]:
    """Classify posts by id, then ask the forward queue to deliver what the policy forwarded."""
    with session_scope() as session:
        outcome = classify.classify_posts(session=session, post_ids=post_ids)
    from pipelines.tasks.forward import schedule_delivery

    for outbox_id in outcome.outbox_ids:
        schedule_delivery(outbox_id)
    return {"classified": len(outcome.classified), "forwarded": len(outcome.outbox_ids)}


@app.task(name="jaring.classify.sweep")
def classify_pending() -> int:
    """Queue classification for unclassified posts whose message is missing or stuck (e.g. a broker outage).

    A post whose classify message was published less than ``classify_requeue_seconds`` ago is left to
    that message, so a backlog or a failing classifier does not pile up a duplicate message per post
    every sweep; one that is still ``new`` after the interval is queued again.
    """
    requeue_after = timedelta(seconds=get_settings().classify_requeue_seconds)
    with session_scope() as session:  # found and marked in one transaction
        ids = classify.pending_post_ids(session=session, requeue_after=requeue_after, limit=5000)
        classify.mark_queued(session=session, post_ids=ids)
    _publish(ids)
    return len(ids)


def schedule_classification(post_ids: list[int]) -> None:
    """Mark these posts queued, then publish their classify messages in chunks.

    Marked first: if publishing fails, the sweep queues them again once the re-queue interval passes.
    """
    if not post_ids:
        return
    with session_scope() as session:
        classify.mark_queued(session=session, post_ids=post_ids)
    _publish(post_ids)


def _publish(post_ids: list[int]) -> None:
    """One classify message per chunk of posts."""
    for start in range(0, len(post_ids), CHUNK):
        classify_posts.delay(post_ids[start : start + CHUNK])


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """Catch up on unclassified posts (every minute by default)."""
    return {"classify-sweep": {"task": "jaring.classify.sweep", "schedule": settings.classify_sweep_seconds}}
