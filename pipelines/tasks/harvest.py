"""Tasks of the ``harvest`` queue: a dispatcher beat calls often, and one run of one source.

Beat has a single harvest entry, the dispatcher. Each tick it reads the sources file afresh and queues
a run of every source that is due (:func:`pipelines.harvest.claim_due_sources`), so adding a source,
changing its ``schedule_seconds`` or switching it on takes effect at the next tick, without restarting
beat.
"""

from __future__ import annotations

import logging
from typing import Any

from jaring.db import session_scope
from jaring.settings import Settings, get_settings
from pipelines.celery_app import app
from pipelines.harvest import claim_due_sources, run_source
from pipelines.models import utcnow
from pipelines.sources import SourceConfigError, load_sources

log = logging.getLogger(__name__)


@app.task(name="jaring.harvest.run_source")
def run_source_task(source_key: str) -> dict[str, Any]:
    """Harvest one source (it re-reads its config and lease itself), then queue classification."""
    summary = run_source(source_key=source_key)
    from pipelines.tasks.classify import schedule_classification

    schedule_classification(summary.new_post_ids + summary.updated_post_ids)
    return summary.as_dict()


@app.task(name="jaring.harvest.dispatch")
def dispatch_due_sources() -> list[str]:
    """Queue one run of every source that is due now; returns their keys.

    Marked queued first, then published: if publishing fails, the source is queued again once its
    schedule interval has passed. A message that waits longer than that interval expires unrun (a
    newer one has been queued by then).
    """
    try:
        sources = load_sources(get_settings().sources_file)
    except SourceConfigError as exc:
        log.error("harvest dispatch: unusable sources file, nothing queued: %s", exc)
        return []
    with session_scope() as session:
        due = claim_due_sources(session=session, sources=sources, now=utcnow())
    for source in due:
        run_source_task.apply_async(args=[source.key], expires=source.schedule_seconds)
    return [source.key for source in due]


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """The dispatcher, every ``harvest_dispatch_seconds`` (each source keeps its own schedule)."""
    return {
        "harvest-dispatch": {
            "task": "jaring.harvest.dispatch",
            "schedule": float(settings.harvest_dispatch_seconds),
        }
    }
