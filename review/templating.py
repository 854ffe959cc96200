"""The Jinja2 environment every router renders with (autoescape always on).

Other routers render with ``from review.templating import render`` and extend ``base.html``
(blocks ``title`` and ``content``); the current user, ``csrf_input()`` and the navigation are
in every template's context.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.responses import HTMLResponse

from pipelines.review_actions import BODY_MAX, BODY_MIN, TITLE_MAX, TITLE_MIN
from review.auth import csrf_input, csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
WITA = timedelta(hours=8)  # Kota Kupang's local time (UTC+8), for display only

TOPIC_NAMES = {
    "perhubungan": "Perhubungan", "infrastruktur": "Infrastruktur", "ketertiban_kebersihan": "Ketertiban & kebersihan",
    "air_sda": "Air & SDA", "lainnya": "Lainnya", "lingkungan_hidup": "Lingkungan hidup",
    "kriminalitas": "Kriminalitas", "sampah": "Sampah", "adminduk": "Adminduk", "pendidikan": "Pendidikan",
    "perizinan": "Perizinan", "kesehatan": "Kesehatan",
}
RELEVANCE_NAMES = {"keluhan": "Keluhan", "respon": "Respons", "bukan": "Bukan keluhan"}
STATUS_NAMES = {"new": "Baru", "queued": "Antre", "confirmed": "Dikonfirmasi", "rejected": "Ditolak",
                "forwarded": "Diteruskan"}
PLATFORM_NAMES = {"twitter": "X", "facebook": "Facebook", "instagram": "Instagram"}
REJECT_NAMES = {"not_complaint": "Bukan keluhan", "spam": "Spam", "duplicate": "Duplikat"}


def local_time(value: datetime | None, fmt: str = "%d-%m-%Y %H:%M") -> str:
    """A UTC time shown in WITA."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value.astimezone(UTC) + WITA).strftime(fmt) + " WITA"


def percent(value: float | None) -> str:
    """A score 0..1 as a whole percentage."""
    return "—" if value is None else f"{round(value * 100)}%"


def _context(request: Request) -> dict[str, Any]:
    user = getattr(request.state, "user", None)
    nav = [link for link in getattr(request.app.state, "nav_links", [])
           if user is not None and (user.role == "admin" or user.role in link[2])]
    return {"current_user": user, "csrf_input": lambda: csrf_input(request), "csrf_token": csrf_token(request),
            "nav_links": nav}


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(local_time=local_time, percent=percent)
    env.globals.update(TOPIC_NAMES=TOPIC_NAMES, RELEVANCE_NAMES=RELEVANCE_NAMES, STATUS_NAMES=STATUS_NAMES,
                       PLATFORM_NAMES=PLATFORM_NAMES, REJECT_NAMES=REJECT_NAMES,
                       # The composer's limits, also on the fix-and-retry form (one definition for both).
                       TITLE_MIN=TITLE_MIN, TITLE_MAX=TITLE_MAX, BODY_MIN=BODY_MIN, BODY_MAX=BODY_MAX)
    return env


templates = Jinja2Templates(env=_environment(), context_processors=[_context])


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """Render a template with the common context."""
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code)
