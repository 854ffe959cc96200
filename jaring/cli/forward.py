"""Commands for the LAPOR! outbox: inspect, retry dead letters, deliver, sync statuses, manual entry."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)

CLI_ACTOR = "cli"


def register(app: typer.Typer) -> None:
    """Add ``outbox``, ``forward`` and ``manual`` command groups to ``app``."""
    outbox_app = typer.Typer(help="The LAPOR! outbox: what is queued, sent, or dead.", no_args_is_help=True)
    outbox_app.command("list")(outbox_list)
    outbox_app.command("show")(outbox_show)
    outbox_app.command("retry")(outbox_retry)
    outbox_app.command("manual-to-api")(outbox_manual_to_api)
    app.add_typer(outbox_app, name="outbox")

    forward_app = typer.Typer(help="Forwarding to LAPOR!: deliver now, sync statuses.", no_args_is_help=True)
    forward_app.command("deliver")(forward_deliver)
    forward_app.command("sync")(forward_sync)
    app.add_typer(forward_app, name="forward")

    manual_app = typer.Typer(
        help="Manual-entry sender: record what an admin typed into LAPOR!.", no_args_is_help=True
    )
    manual_app.command("record")(manual_record)
    manual_app.command("status")(manual_status)
    app.add_typer(manual_app, name="manual")


def outbox_list(
    state: list[str] = typer.Option(
        None,
        "--state",
        help="Only these states (pending, sending, unknown, awaiting_manual, sent, dead); repeatable.",
    ),
    limit: int = typer.Option(50, min=1, max=1000, help="How many rows."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """List outbox items, newest first, with counts per state."""
    from jaring.db import session_scope
    from pipelines import outbox

    with session_scope() as session:
        rows = outbox.list_items(session=session, states=tuple(state) if state else None, limit=limit)
        counts = outbox.counts_by_state(session=session)
        if as_json:
            for item, complaint in rows:
                console.print_json(json.dumps(_item_dict(item, complaint)))
            return
        table = Table("id", "complaint", "state", "attempts", "tracking id", "next attempt", "last error")
        for item, complaint in rows:
            table.add_row(
                str(item.id),
                str(complaint.id),
                item.state,
                str(item.attempts),
                complaint.tracking_id or "",
                str(item.next_attempt_at or "")[:19],
                (item.last_error or "")[:60],
            )
        console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "outbox is empty")


def _item_dict(item: Any, complaint: Any) -> dict[str, Any]:
    return {
        "outbox_id": item.id,
        "complaint_id": complaint.id,
        "state": item.state,
        "sender": item.sender,
        "attempts": item.attempts,
        "tracking_id": complaint.tracking_id,
        "lapor_status": complaint.lapor_status,
        "title": complaint.title,
        "instansi": complaint.instansi,
        "last_error": item.last_error,
        "next_attempt_at": item.next_attempt_at.isoformat() if item.next_attempt_at else None,
    }


def outbox_show(outbox_id: int = typer.Argument(..., help="Outbox item id.")) -> None:
    """Show one outbox item, its complaint and every delivery attempt."""
    from jaring.db import session_scope
    from pipelines import outbox
    from pipelines.models import Complaint, OutboxItem

    with session_scope() as session:
        item = session.get(OutboxItem, outbox_id)
        if item is None:
            errors.print(f"[red]no outbox item {outbox_id}[/red]")
            raise typer.Exit(1)
        complaint = session.get(Complaint, item.complaint_id)
        console.print_json(json.dumps(_item_dict(item, complaint)))
        for attempt in outbox.attempts_of(session=session, outbox_id=outbox_id):
            console.print(
                f"  {str(attempt.started_at)[:19]}  {attempt.outcome:8} "
                f"{attempt.http_status or '':>4}  {(attempt.error or '')[:100]}"
            )


def outbox_retry(
    outbox_id: int = typer.Argument(None, help="Dead outbox item to retry."),
    all_dead: bool = typer.Option(
        False, "--all-dead", help="Retry every dead item (e.g. after fixing the token)."
    ),
    title: str = typer.Option(None, help="New judul before retrying."),
    instansi: str = typer.Option(None, help="New instansi tujuan before retrying."),
    category: str = typer.Option(None, help="New kategori before retrying."),
) -> None:
    """Put dead-letter items back in the queue (optionally fixing fields), then schedule delivery."""
    from jaring.db import session_scope
    from pipelines import outbox
    from pipelines.models import OutboxState
    from pipelines.tasks.forward import schedule_delivery

    if outbox_id is None and not all_dead:
        errors.print("[red]give an outbox id or --all-dead[/red]")
        raise typer.Exit(2)
    changes = {k: v for k, v in {"title": title, "instansi": instansi, "category": category}.items() if v}
    with session_scope() as session:
        ids = (
            [outbox_id]
            if outbox_id is not None
            else [
                item.id
                for item, _ in outbox.list_items(
                    session=session, states=(OutboxState.DEAD.value,), limit=10_000
                )
            ]
        )
        retried = []
        for one in ids:
            try:
                outbox.retry_dead(session=session, outbox_id=one, actor=CLI_ACTOR, changes=changes)
            except outbox.OutboxError as exc:
                errors.print(f"[red]{exc}[/red]")
                if outbox_id is not None:
                    raise typer.Exit(1) from None
                continue
            retried.append(one)
    for one in retried:
        schedule_delivery(one)
    console.print(f"retried {len(retried)} item(s)")


def outbox_manual_to_api() -> None:
    """After switching JARING_LAPOR_SENDER to api: send the items still waiting for manual entry."""
    from jaring.db import session_factory
    from jaring.settings import get_settings
    from pipelines import outbox
    from pipelines.tasks.forward import schedule_delivery

    if get_settings().lapor_sender != "api":
        errors.print("[red]JARING_LAPOR_SENDER is not 'api'; nothing moved[/red]")
        raise typer.Exit(1)
    with session_factory()() as session:
        ids = outbox.send_manual_items_via_api(session=session, actor=CLI_ACTOR)
    for one in ids:
        schedule_delivery(one)
    console.print(f"moved {len(ids)} item(s) to the API sender")


def forward_deliver(
    limit: int = typer.Option(500, min=1, help="At most this many due items."),
) -> None:
    """Deliver due outbox items now, in this process (without a worker)."""
    from jaring.db import session_scope
    from pipelines import outbox

    with session_scope() as session:
        ids = outbox.due_ids(session=session, limit=limit)
    outcomes: dict[str, int] = {}
    for one in ids:
        try:
            outcome = outbox.deliver(outbox_id=one).outcome
        except outbox.DeliveryDeferred:
            outcome = "retry"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    console.print_json(json.dumps(outcomes))


def forward_sync() -> None:
    """Ask LAPOR! for the status of every open complaint now; flag overdue ones."""
    from pipelines import status_sync
    from pipelines.lapor import LaporError

    try:
        summary = status_sync.sync_all()
    except LaporError as exc:
        errors.print(f"[red]LAPOR! unreachable: {exc}[/red]")
        raise typer.Exit(1) from None
    console.print_json(json.dumps(summary.as_dict()))


def manual_record(
    complaint: int = typer.Option(..., "--complaint", help="Complaint id."),
    tracking_id: str = typer.Option(..., "--tracking-id", help="The tracking id LAPOR! gave."),
    actor: str = typer.Option(CLI_ACTOR, help="Who entered it in LAPOR! (for the audit log)."),
) -> None:
    """Record the tracking id of a complaint an admin entered into LAPOR! by hand."""
    from jaring.db import session_factory
    from pipelines import outbox

    with session_factory()() as session:
        try:
            result = outbox.record_manual_entry(
                session=session, complaint_id=complaint, tracking_id=tracking_id, actor=actor
            )
        except outbox.OutboxError as exc:
            errors.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    from pipelines.tasks.forward import schedule_reply

    schedule_reply(result.complaint_id)
    console.print(f"complaint {complaint}: {result.outcome}, tracking id {result.tracking_id}")


def manual_status(
    complaint: int = typer.Option(..., "--complaint", help="Complaint id."),
    status: str = typer.Option(..., "--status", help="Status shown in LAPOR!, e.g. 'Terdisposisi'."),
    actor: str = typer.Option(CLI_ACTOR, help="Who read it (for the audit log)."),
) -> None:
    """Record a complaint's LAPOR! status read by an admin (manual-entry deployments)."""
    from jaring.db import session_factory
    from pipelines import status_sync

    with session_factory()() as session:
        try:
            added = status_sync.record_manual_status(
                session=session, complaint_id=complaint, status=status, actor=actor
            )
        except ValueError as exc:
            errors.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    console.print(f"complaint {complaint}: {added} change(s) recorded")
