"""Harvesting in the web app: the Meta webhook receiver and the sources health page.

Webhook (Instagram @mentions and comments, Page ``feed``): GET answers Meta's subscription
handshake; POST checks ``X-Hub-Signature-256`` on the raw body (403 on a missing or wrong
signature), then fetches what the notification names and stores it. A platform hiccup while
fetching answers 503 so Meta delivers the notification again.

``/sumber`` (admins): per-source health, last success, backoff and the last run, with on/off
switches (the CSRF token is checked by the app's middleware; the switch is audit-logged).
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from harvester.types import RateLimited, TransientError
from harvester.webhooks import verify_handshake, verify_signature
from jaring.settings import get_settings
from pipelines.harvest import ingest_webhook, reset_health, source_status
from pipelines.models import User
from pipelines.sources import SourceConfigError, load_sources, set_enabled
from review.auth import get_db, require_role

log = logging.getLogger(__name__)

router = APIRouter()
NAV_LINKS = [("Sumber", "/sumber", ("admin",))]

MAX_BODY_BYTES = 1_000_000


@router.get("/webhooks/meta")
def meta_handshake(request: Request) -> Response:
    """Echo ``hub.challenge`` when ``hub.verify_token`` matches ours (subscription set-up)."""
    settings = get_settings()
    token = settings.meta_verify_token.get_secret_value() if settings.meta_verify_token else ""
    challenge = verify_handshake(dict(request.query_params), token)
    if challenge is None:
        return PlainTextResponse("forbidden", status_code=403)
    return PlainTextResponse(challenge)


@router.post("/webhooks/meta")
async def meta_notification(request: Request) -> Response:
    """Verify the signature on the raw body, then fetch and store what the notification names."""
    settings = get_settings()
    body = await _read_capped(request)
    if body is None:
        return PlainTextResponse("payload too large", status_code=413)
    secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else ""
    if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
        return PlainTextResponse("invalid signature", status_code=403)
    try:
        payload = json.loads(body)
    except ValueError:
        return PlainTextResponse("invalid JSON", status_code=400)
    try:
        result = await run_in_threadpool(ingest_webhook, payload=payload, settings=settings)
    except (TransientError, RateLimited) as exc:
        log.warning("webhook fetch failed, asking Meta to retry: %s", exc)
        return PlainTextResponse("try again later", status_code=503)
    return JSONResponse(
        {
            "new": len(result.new_post_ids),
            "updated": len(result.updated_post_ids),
            "quarantined": result.quarantined,
        }
    )


async def _read_capped(request: Request) -> bytes | None:
    """The raw body, or None past MAX_BODY_BYTES: the signature needs all of it, so an anonymous
    sender must not make us hold more than that (a declared length is refused before reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


RUN_STATUS_NAMES = {"running": "berjalan", "ok": "berhasil", "partial": "sebagian", "failed": "gagal"}
HEALTH_NAMES = {
    "ok": "Sehat",
    "backoff": "Menunggu (batas akses)",
    "failing": "Bermasalah",
    "stopped": "Berhenti (token)",
    "never run": "Belum pernah jalan",
    "disabled": "Nonaktif",
}

SOURCES_PAGE = """{% extends "base.html" %}
{% block title %}Sumber panen{% endblock %}
{% block content %}
<h1>Sumber panen</h1>
<table class="grid" id="sources-table">
  <thead><tr><th>Sumber</th><th>Platform</th><th>Kesehatan</th><th>Terakhir berhasil</th><th>Menunggu sampai</th>
  <th>Proses terakhir</th><th>Baru / ubah / ulang / karantina</th><th>Galat dan catatan terakhir</th><th></th></tr></thead>
  <tbody>
  {% for r in rows %}
  <tr>
    <td>{{ r.key }}</td><td>{{ PLATFORM_NAMES.get(r.platform, r.platform) }}</td>
    <td>{{ health_names.get(r.health, r.health) }}{% if r.running %} · sedang berjalan{% endif %}</td>
    <td>{{ r.last_success_at | local_time }}</td>
    <td>{{ r.backoff_until | local_time if r.backoff_until else '—' }}</td>
    <td>{{ run_names.get(r.last_run_status, r.last_run_status) if r.last_run_status else '—' }}
      {{ r.last_run_at | local_time if r.last_run_at else '' }}</td>
    <td>{{ r.new }} / {{ r.updated }} / {{ r.duplicate }} / {{ r.quarantined }}</td>
    <td>{{ r.last_error[:160] }}{% for note in r.notes %}<div class="muted">{{ note[:200] }}</div>{% endfor %}</td>
    <td>{% if r.enabled and r.health in ('stopped', 'failing', 'backoff') %}
      <form method="post" action="/sumber/{{ r.key }}/aktifkan">{{ csrf_input() }}
        <button type="submit" title="Hapus status berhenti/bermasalah dan panen lagi pada jadwal berikutnya">Aktifkan kembali</button></form>
      {% endif %}
      <form method="post" action="/sumber/{{ r.key }}/{{ 'nonaktifkan' if r.enabled else 'aktifkan' }}">
      {{ csrf_input() }}<button type="submit">{{ 'Nonaktifkan' if r.enabled else 'Aktifkan' }}</button></form></td>
  </tr>
  {% endfor %}
  </tbody>
</table>
{% endblock %}
"""


@router.get("/sumber", response_class=HTMLResponse)
def sources_page(
    request: Request, db: Session = Depends(get_db), user: User = Depends(require_role("admin"))
) -> Response:
    """Per-source health, last success, backoff and the last run's counts."""
    from review.templating import _context, templates

    rows = source_status(session=db, sources=load_sources(get_settings().sources_file))
    page = templates.env.from_string(SOURCES_PAGE)
    return HTMLResponse(page.render(**_context(request), rows=rows, health_names=HEALTH_NAMES,
                                    run_names=RUN_STATUS_NAMES))


@router.post("/sumber/{key}/{action}")
def switch_source(
    key: str, action: str, db: Session = Depends(get_db), user: User = Depends(require_role("admin"))
) -> Response:
    """Switch a source on (clearing a token stop) or off; takes effect at its next scheduled run."""
    if action not in ("aktifkan", "nonaktifkan"):
        return PlainTextResponse("not found", status_code=404)
    enabled = action == "aktifkan"
    try:
        set_enabled(key, enabled, get_settings().sources_file)
    except SourceConfigError:
        return PlainTextResponse("not found", status_code=404)
    reset_health(session=db, source_key=key, enabled=enabled, actor=user.username)
    db.commit()
    return RedirectResponse("/sumber", status_code=303)
