"""Web commands: ``jaring serve`` (the review app) and ``jaring users create``."""

from __future__ import annotations

import logging
import os

import typer
from rich.console import Console

from jaring.settings import get_settings

console = Console(stderr=True)
PASSWORD_ENV = "JARING_NEW_USER_PASSWORD"  # noqa: S105 - the name of an environment variable


class MaskAccessArgs(logging.Filter):
    """Mask personal data in uvicorn access-log arguments, keeping them a tuple (its formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_access_arg(a) if isinstance(a, str) else a for a in record.args)
        return True


def _mask_access_arg(value: str) -> str:
    """``value`` masked; a request target's query string is decoded first (a browser sends ``@`` as
    ``%40`` and spaces as ``+``, which the patterns would not see), masked, and encoded again."""
    from urllib.parse import parse_qsl, urlencode

    from jaring.privacy import SECRET_QUERY_PARAMS, mask_pii

    path, question, query = value.partition("?")
    if not question or not path.startswith("/"):
        return mask_pii(value)
    pairs = [
        (mask_pii(key), "***" if key in SECRET_QUERY_PARAMS else mask_pii(item))
        for key, item in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{mask_pii(path)}?{urlencode(pairs, safe='*')}"


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``users`` group to ``app``."""
    app.command()(serve)
    users_app = typer.Typer(help="Manage web app accounts.", no_args_is_help=True)
    users_app.command("create")(create_user)
    app.add_typer(users_app, name="users")


def serve(
    host: str = typer.Option(None, help="Interface to listen on (default: JARING_WEB_HOST)."),
    port: int = typer.Option(None, help="Port (default: JARING_WEB_PORT)."),
) -> None:
    """Serve the review web app (humas inbox, composer, dashboard) with uvicorn."""
    import uvicorn

    from jaring.logs import configure_logging, mask_handlers
    from review.app import create_app

    settings = get_settings()
    app = create_app(settings)  # refuses a default secret in production before listening
    config = uvicorn.Config(
        app,
        host=host or settings.web_host,
        port=port or settings.web_port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
        server_header=False,
    )
    # uvicorn has just set up its own handlers: mask personal data (search terms in URLs) on them too.
    configure_logging()
    for name in ("uvicorn", "uvicorn.error"):
        mask_handlers(logging.getLogger(name))
    for handler in logging.getLogger("uvicorn.access").handlers:
        handler.addFilter(MaskAccessArgs())
    uvicorn.Server(config).run()


def create_user(
    username: str = typer.Option(..., "--username", help="Login name (letters, digits, . _ -)."),
    role: str = typer.Option(..., "--role", help="viewer | reviewer | analyst | admin"),
    full_name: str = typer.Option("", "--full-name", help="Display name."),
) -> None:
    """Create an account. The password comes from $JARING_NEW_USER_PASSWORD or a hidden prompt, never an argument."""
    from jaring.db import session_scope
    from review.auth import create_user as add_user

    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "Kata sandi", hide_input=True, confirmation_prompt=True
    )
    try:
        with session_scope() as session:
            user = add_user(
                session=session,
                username=username,
                password=password,
                role=role,
                actor="system:cli",
                full_name=full_name,
            )
            name, user_role = user.username, user.role
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from exc
    console.print(f"[green]user {name} created with role {user_role}[/green]")
