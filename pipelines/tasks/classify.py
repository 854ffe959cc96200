"""Tasks of the ``classify`` queue."""

from __future__ import annotations

from typing import Any

from jaring.db import session_scope
from jaring.settings import Settings
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
    """Queue classification for stored posts nobody classified yet (e.g. after a broker outage)."""
    with session_scope() as session:
        ids = classify.pending_post_ids(session=session, limit=5000)
    for start in range(0, len(ids), CHUNK):
        classify_posts.delay(ids[start : start + CHUNK])
    return len(ids)


def schedule_classification(post_ids: list[int]) -> None:
    """Queue classification of these posts in chunks."""
    for start in range(0, len(post_ids), CHUNK):
        classify_posts.delay(post_ids[start : start + CHUNK])


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """Catch up on unclassified posts (every minute by default)."""
    return {"classify-sweep": {"task": "jaring.classify.sweep", "schedule": settings.classify_sweep_seconds}}
