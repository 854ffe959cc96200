"""The one Celery app, and every piece of Celery policy Jaring has, in one place.

Why each setting is what it is:

- JSON only (``task_serializer``/``accept_content``): a pickled message on the broker could run code in
  every worker; task arguments are ids and plain JSON, never ORM objects or secrets.
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its task
  finished, so a worker killed mid-task leaves the message to be redelivered. Every task is therefore
  written to be idempotent (harvest checkpoints, ingest upserts, outbox state machine).
- ``worker_prefetch_multiplier = 1``: a worker holds one message at a time, so a slow Facebook page
  never sits on messages other workers could run.
- Three queues, ``harvest``, ``classify`` and ``forward``, routed by task-name prefix: run a dedicated
  worker per queue (``jaring worker --queues forward``) so a slow platform never delays LAPOR!.
- Time limits: a task that hangs is killed (hard limit) after being asked to stop (soft limit).
- Retries: tasks retry with exponential backoff and jitter (``retry_backoff``), bounded.
- Broker: Redis in production (``JARING_BROKER_URL=redis://...``). The embedded default is kombu's
  SQLAlchemy transport on a SQLite file, so the real ``celery worker`` and ``celery beat`` processes
  run on a laptop with no server at all.
- The beat schedule is assembled from each tasks module's ``beat_schedule(settings)``. Harvesting has
  one entry, a dispatcher that re-reads the sources file each tick and queues the sources that are due,
  so sources change without restarting beat; every task re-reads its configuration when it runs.
"""

from __future__ import annotations

import importlib
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

from jaring.logs import mask_handlers
from jaring.settings import Settings, get_settings

TASK_MODULES = ("pipelines.tasks.harvest", "pipelines.tasks.classify", "pipelines.tasks.forward")
QUEUES = ("harvest", "classify", "forward")


def celery_config(settings: Settings) -> dict[str, Any]:
    """Every Celery setting, derived from Jaring's settings."""
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # Longer than the longest task's hard time limit, so an unacked message is not redelivered early.
        transport_options["visibility_timeout"] = 3600
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options,
        "result_backend": settings.result_backend or None,
        "task_ignore_result": not settings.result_backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": 900,
        "task_soft_time_limit": 840,
        "task_default_queue": "classify",
        "task_routes": {f"jaring.{queue}.*": {"queue": queue} for queue in QUEUES},
        "task_default_retry_delay": 5,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
    }


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """The beat schedule: the union of every tasks module's entries."""
    schedule: dict[str, Any] = {}
    for name in TASK_MODULES:
        module = importlib.import_module(name)
        entries = getattr(module, "beat_schedule", None)
        if entries is not None:
            schedule.update(entries(settings))
    return schedule


def create_app(settings: Settings | None = None) -> Celery:
    """A configured Celery app with all of Jaring's tasks registered."""
    settings = settings or get_settings()
    celery = Celery("jaring")
    celery.conf.update(celery_config(settings))
    celery.conf.include = list(TASK_MODULES)
    return celery


app = create_app()


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **_: Any) -> None:
    sender.conf.beat_schedule = beat_schedule(get_settings())


@worker_process_init.connect
def _fresh_database_pool(**_: Any) -> None:
    # A forked worker must not share its parent's database connections.
    from jaring.db import reset_engine

    reset_engine()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_personal_data(logger: Any, **_: Any) -> None:
    # Post texts can carry phone numbers, NIK and e-mails: mask them on every Celery log handler.
    mask_handlers(logger)
