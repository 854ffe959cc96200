"""``jaring harvest`` and ``jaring sources``: run a harvest, list sources, see their health, switch them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from jaring.db import session_scope
from jaring.settings import get_settings

console = Console()
sources_app = typer.Typer(
    help="Harvest sources: list them, see their health, switch them on or off.", no_args_is_help=True
)


def harvest(
    source: str = typer.Argument(..., help="Source key from the sources file (see `jaring sources list`)."),
    once: bool = typer.Option(False, "--once", help="Run here and now instead of queueing it for a worker."),
    force: bool = typer.Option(False, "--force", help="Run even if the source is in backoff."),
) -> None:
    """Harvest one source: now (--once, prints a JSON summary) or by queueing it for the harvest worker."""
    if once:
        from pipelines.harvest import run_source

        summary = run_source(source_key=source, force=force)
        typer.echo(
            json.dumps(
                summary.as_dict()
                | {
                    "new_post_ids": len(summary.new_post_ids),
                    "updated_post_ids": len(summary.updated_post_ids),
                }
            )
        )
        raise typer.Exit(0 if summary.status in ("ok", "partial", "locked", "backoff") else 1)
    from pipelines.tasks.harvest import run_source_task

    result = run_source_task.delay(source)
    typer.echo(f"queued harvest of {source} ({result.id})")


@sources_app.command("list")
def list_sources() -> None:
    """The configured sources: platform, schedule, on/off, what they watch."""
    from pipelines.sources import load_sources

    table = Table("key", "platform", "enabled", "every", "watches", "credential env")
    for s in load_sources(get_settings().sources_file):
        watches = ", ".join(
            [f"@{a['handle'] or a['id']}" for a in s.accounts]
            + [f"q:{q[:30]}" for q in s.queries]
            + list(s.page_ids)
            + list(s.ig_account_ids)
        )
        table.add_row(
            s.key,
            s.platform,
            "yes" if s.enabled else "no",
            f"{s.schedule_seconds}s",
            watches[:80],
            s.credentials_env,
        )
    console.print(table)


def _ago(value: datetime | None) -> str:
    if value is None:
        return "-"
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 0:
        return f"in {-seconds // 60}m"
    return f"{seconds // 60}m ago" if seconds < 86400 else f"{seconds // 86400}d ago"


@sources_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Per-source health, last success, current backoff and the last run's counts."""
    from pipelines.harvest import source_status
    from pipelines.sources import load_sources

    with session_scope() as session:
        rows = source_status(session=session, sources=load_sources(get_settings().sources_file))
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    table = Table(
        "key",
        "enabled",
        "health",
        "last success",
        "backoff until",
        "last run",
        "new/upd/dup/quar",
        "last error",
    )
    for r in rows:
        table.add_row(
            r["key"],
            "yes" if r["enabled"] else "no",
            r["health"],
            _ago(r["last_success_at"]),
            _ago(r["backoff_until"]) if r["backoff_until"] else "-",
            f"{r['last_run_status'] or '-'} {_ago(r['last_run_at'])}",
            "/".join(str(r[k]) for k in ("new", "updated", "duplicate", "quarantined")),
            (r["last_error"] or "")[:60],
        )
    console.print(table)


@sources_app.command("enable")
def enable(key: str = typer.Argument(..., help="Source key.")) -> None:
    """Switch a source on (and clear a stop caused by an expired token, once you replaced it)."""
    _switch(key, True)


@sources_app.command("disable")
def disable(key: str = typer.Argument(..., help="Source key.")) -> None:
    """Switch a source off; scheduled runs return without calling the platform."""
    _switch(key, False)


def _switch(key: str, enabled: bool) -> None:
    from pipelines.harvest import reset_health
    from pipelines.sources import SourceConfigError, set_enabled

    try:
        set_enabled(key, enabled, get_settings().sources_file)
    except SourceConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    with session_scope() as session:
        reset_health(session=session, source_key=key, enabled=enabled, actor="cli")
    typer.echo(f"{key} {'enabled' if enabled else 'disabled'}")


def register(app: typer.Typer) -> None:
    """Add ``harvest`` and ``sources`` to the ``jaring`` command."""
    app.command("harvest")(harvest)
    app.add_typer(sources_app, name="sources")
