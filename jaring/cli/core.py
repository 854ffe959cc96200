"""Core commands: migrate, worker, beat, demo, export."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from jaring.settings import get_settings

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the core commands to ``app``."""
    app.command()(migrate)
    app.command()(worker)
    app.command()(beat)
    app.command()(demo)
    export_app = typer.Typer(help="Export data (personal data masked).", no_args_is_help=True)
    export_app.command("posts")(export_posts)
    app.add_typer(export_app, name="export")


def migrate(revision: str = typer.Option("head", help="Alembic revision to upgrade to.")) -> None:
    """Create or upgrade the database schema (SQLite or PostgreSQL, from JARING_DATABASE_URL)."""
    from jaring.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    console.print(f"[green]database at revision {revision}[/green]")


def worker(
    queues: str = typer.Option("harvest,classify,forward", help="Comma-separated queues to consume."),
    concurrency: int = typer.Option(2, min=1, help="Worker processes."),
    loglevel: str = typer.Option("INFO", help="Celery log level."),
) -> None:
    """Run a Celery worker (the real `celery worker` process) for the given queues."""
    from pipelines.celery_app import app as celery_app

    celery_app.worker_main(
        [
            "worker",
            f"--queues={queues}",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def beat(loglevel: str = typer.Option("INFO", help="Celery log level.")) -> None:
    """Run Celery beat: the harvest dispatcher (sources file re-read each tick), sweeps and status sync."""
    from pipelines.celery_app import app as celery_app

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery_app.start(
        ["beat", f"--loglevel={loglevel}", f"--schedule={settings.data_dir / 'celerybeat-schedule'}"]
    )


def demo(
    once: bool = typer.Option(
        False, "--once", help="Run one full cycle without serving; print a JSON summary."
    ),
) -> None:
    """Run the whole path against local stand-ins: harvest, classify, review queue, forward to LAPOR!."""
    from jaring import demo as demo_flow

    if once:
        summary = demo_flow.run_once()
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        demo_flow.run_forever()


def export_posts(
    output: Path = typer.Option(..., "--output", "-o", help="JSON Lines file to write."),
    limit: int = typer.Option(0, help="At most this many posts (0: all)."),
) -> None:
    """Export captured posts with their labels as JSON Lines, phone numbers, NIK and e-mails masked."""
    from jaring.db import session_scope
    from pipelines.export_posts import write_posts_jsonl

    with session_scope() as session:
        count = write_posts_jsonl(session=session, path=output, limit=limit or None)
    console.print(f"[green]{count} posts written to {output}[/green]")
