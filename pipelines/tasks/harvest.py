"""Tasks of the ``harvest`` queue: one run of one source, scheduled by beat from the sources file."""

from __future__ import annotations

from typing import Any

from jaring.settings import Settings
from pipelines.celery_app import app
from pipelines.harvest import run_source
from pipelines.sources import SourceConfigError, load_sources


@app.task(name="jaring.harvest.run_source")
def run_source_task(source_key: str) -> dict[str, Any]:
    """Harvest one source (it re-reads its config and lease itself), then queue classification."""
    summary = run_source(source_key=source_key)
    from pipelines.tasks.classify import schedule_classification

    schedule_classification(summary.new_post_ids + summary.updated_post_ids)
    return summary.as_dict()


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """One entry per configured source, switched-off ones included (the job itself checks ``enabled``)."""
    try:
        sources = load_sources(settings.sources_file)
    except SourceConfigError:
        return {}
    return {
        f"harvest:{s.key}": {
            "task": "jaring.harvest.run_source",
            "schedule": float(s.schedule_seconds),
            "args": [s.key],
        }
        for s in sources
    }
