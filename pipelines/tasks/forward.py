"""Tasks of the ``forward`` queue: deliver outbox items to LAPOR!, sweep, sync statuses, reply."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from jaring.settings import Settings
from pipelines import outbox, status_sync
from pipelines.celery_app import app
from pipelines.forward_policy import load_forward_config
from pipelines.lapor import LaporError

log = logging.getLogger(__name__)
UNEXPECTED_ERROR_RETRIES = 20


@app.task(name="jaring.forward.deliver", bind=True, max_retries=None)
def deliver(self: Task, outbox_id: int) -> dict[str, Any]:
    """Deliver one outbox item; a retryable failure retries the task after the item's backoff."""
    try:
        result = outbox.deliver(outbox_id=outbox_id)
    except outbox.DeliveryDeferred as exc:
        # The item's next attempt time is stored too: the sweep delivers it if this retry is lost.
        raise self.retry(exc=exc, countdown=exc.countdown) from None
    except Exception as exc:
        # The database went away, or a bug: the item stays claimed until its lease runs out, then it
        # is looked up in LAPOR! before anything is sent again. Retry after the lease, a bounded number of times.
        lease = load_forward_config().delivery.lease_seconds
        raise self.retry(exc=exc, countdown=lease, max_retries=UNEXPECTED_ERROR_RETRIES) from exc
    if result.outcome == "sent":
        schedule_reply(result.complaint_id)
    return {"outbox_id": outbox_id, "outcome": result.outcome, "tracking_id": result.tracking_id}


@app.task(name="jaring.forward.sweep")
def sweep() -> int:
    """Schedule every item that is due (retries, missed messages, claims whose worker died)."""
    from jaring.db import session_scope

    config = load_forward_config().delivery
    with session_scope() as session:
        ids = outbox.due_ids(session=session, limit=config.sweep_batch)
    for outbox_id in ids:
        schedule_delivery(outbox_id)
    return len(ids)


@app.task(name="jaring.forward.sync_statuses", bind=True, max_retries=3, default_retry_delay=60)
def sync_statuses(self: Task) -> dict[str, int]:
    """Ask LAPOR! for the status of every open complaint and flag overdue ones."""
    try:
        summary = status_sync.sync_all()
    except LaporError as exc:  # LAPOR! unreachable for every complaint: try again later
        raise self.retry(exc=exc) from None
    return summary.as_dict()


@app.task(name="jaring.forward.reply", bind=True, max_retries=5, default_retry_delay=300)
def reply(self: Task, complaint_id: int) -> str:
    """Reply on the citizen's original post with the LAPOR! link (if enabled for its platform)."""
    try:
        return status_sync.reply_to_citizen(complaint_id=complaint_id)
    except status_sync.ReplyRetry as exc:
        raise self.retry(exc=exc) from None


def schedule_delivery(outbox_id: int | None) -> bool:
    """Ask a worker to deliver now; never raises (if the broker is down the sweep catches up)."""
    if outbox_id is None:
        return False
    try:
        deliver.apply_async(args=[int(outbox_id)], retry=False)
    except Exception:  # noqa: BLE001 - the row is committed; the beat sweep delivers it later
        log.warning("could not queue delivery of outbox item %s; the sweep will pick it up", outbox_id)
        return False
    return True


def schedule_reply(complaint_id: int | None) -> None:
    """Queue the reply to the citizen if any platform has replies on; never raises."""
    if complaint_id is None:
        return
    config = load_forward_config().reply
    if not (config.twitter or config.facebook or config.instagram):
        return
    try:
        reply.apply_async(args=[int(complaint_id)], retry=False)
    except Exception:  # noqa: BLE001 - a missed reply is not worth failing a delivery for
        log.warning("could not queue the reply for complaint %s", complaint_id)


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """Sweep the outbox often; sync statuses with LAPOR! hourly (both tunable in the policy file)."""
    config = load_forward_config(settings.forward_policy_file)
    return {
        "forward-sweep": {"task": "jaring.forward.sweep", "schedule": config.delivery.sweep_interval_seconds},
        "forward-sync-statuses": {
            "task": "jaring.forward.sync_statuses",
            "schedule": config.status_sync.interval_seconds,
        },
    }
