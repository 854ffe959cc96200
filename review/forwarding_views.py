"""The LAPOR! outbox in the web app: state overview, dead letters with "fix and retry", manual entry.

Thin handlers over ``pipelines.outbox`` and ``pipelines.status_sync``; Bahasa Indonesia templates in
``review/templates/forwarding/``. Every state-changing form carries the CSRF token (checked by the
app's middleware) and every action is audit-logged by the service it calls.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from pipelines import outbox, status_sync
from pipelines.lapor import copy_ready_fields, public_link
from pipelines.models import Complaint, OutboxItem, OutboxState, User
from review.auth import get_db, require_role
from review.templating import VIA_NAMES, render
from review.views import flash, pop_flash

router = APIRouter(prefix="/lapor")
FORWARD_ROLES = ("reviewer",)  # humas reviewers and admins (admins pass every role check)
NAV_LINKS = [("LAPOR!", "/lapor", ("reviewer", "admin"))]
STATE_NAMES = {
    OutboxState.PENDING.value: "Menunggu dikirim",
    OutboxState.SENDING.value: "Sedang dikirim",
    OutboxState.UNKNOWN.value: "Hasil belum pasti (dicek ulang)",
    OutboxState.AWAITING_MANUAL.value: "Menunggu input manual",
    OutboxState.SENT.value: "Terkirim",
    OutboxState.DEAD.value: "Gagal — perlu diperbaiki",
}
ATTEMPT_NAMES = {"sent": "terkirim", "retry": "dicoba lagi", "unknown": "hasil belum pasti", "dead": "gagal",
                 "manual": "menunggu input manual"}
OVERDUE_NAMES = {"verify": "verifikasi", "respond": "tindak lanjut", "close": "penutupan"}
PAGE_SIZE = 50


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _int(value: str | None) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


@router.get("")
def overview(
    request: Request,
    state: str = "",
    before: int | None = None,
    db: Session = Depends(get_db),
    user: User = Depends(require_role(*FORWARD_ROLES)),
) -> Response:
    """Counts per state and the newest items (optionally of one state)."""
    states = (state,) if state in STATE_NAMES else None
    rows = outbox.list_items(session=db, states=states, limit=PAGE_SIZE, before_id=before)
    return render(request, "forwarding/overview.html", {
        "rows": rows, "counts": outbox.counts_by_state(session=db), "state": state if states else "",
        "STATE_NAMES": STATE_NAMES, "next_before": rows[-1][0].id if len(rows) == PAGE_SIZE else None,
        "handling": status_sync.handling_summary(session=db), "flash": pop_flash(request),
    })


@router.get("/gagal")
def dead_letters(request: Request, db: Session = Depends(get_db),
                 user: User = Depends(require_role(*FORWARD_ROLES))) -> Response:
    """Dead letters: what LAPOR! refused and why, each with a fix-and-retry form."""
    rows = outbox.list_items(session=db, states=(OutboxState.DEAD.value,), limit=200)
    return render(request, "forwarding/dead.html", {"rows": rows, "flash": pop_flash(request)})


@router.post("/{outbox_id}/kirim-ulang")
async def fix_and_retry(outbox_id: int, request: Request, db: Session = Depends(get_db),
                        user: User = Depends(require_role(*FORWARD_ROLES))) -> Response:
    """Apply the corrections from the form and put the item back in the queue."""
    form = await _form(request)
    changes: dict[str, Any] = {}
    if "title" in form:  # judul and isi are held to the composer's limits by retry_dead, not cut here
        changes["title"] = form["title"].strip()
    if "body" in form:  # browsers send a textarea's line breaks as CRLF
        changes["body"] = form["body"].replace("\r\n", "\n").strip()
    for name, limit in (("category", 200), ("instansi", 300), ("location_text", 500)):
        if name in form:
            changes[name] = form[name].strip()[:limit]
    try:
        outbox.retry_dead(session=db, outbox_id=outbox_id, actor=user.username, changes=changes)
    except outbox.OutboxError as exc:
        db.rollback()
        flash(request, str(exc), "error")
        return _redirect("/lapor/gagal")
    from pipelines.tasks.forward import schedule_delivery

    schedule_delivery(outbox_id)
    flash(request, f"Item #{outbox_id} diperbaiki dan diantrekan ulang ke LAPOR!.")
    return _redirect("/lapor/gagal")


@router.get("/manual")
def manual_queue(request: Request, db: Session = Depends(get_db),
                 user: User = Depends(require_role(*FORWARD_ROLES))) -> Response:
    """Complaints to type into LAPOR! by hand, field by field, with a box for the tracking id."""
    rows = outbox.list_items(session=db, states=(OutboxState.AWAITING_MANUAL.value,), limit=100)
    entries = [(item, complaint, copy_ready_fields(complaint)) for item, complaint in rows]
    uncertain = outbox.uncertain_api_attempts(session=db, outbox_ids=[item.id for item, _ in rows])
    return render(request, "forwarding/manual.html",
                  {"entries": entries, "uncertain": uncertain, "flash": pop_flash(request)})


@router.post("/manual/{complaint_id}")
async def record_manual(complaint_id: int, request: Request, db: Session = Depends(get_db),
                        user: User = Depends(require_role(*FORWARD_ROLES))) -> Response:
    """Store the tracking id LAPOR! gave for a complaint entered by hand."""
    form = await _form(request)
    try:
        result = outbox.record_manual_entry(session=db, complaint_id=complaint_id,
                                            tracking_id=form.get("tracking_id", "")[:100], actor=user.username)
    except outbox.OutboxError as exc:
        db.rollback()
        flash(request, str(exc), "error")
        return _redirect("/lapor/manual")
    from pipelines.tasks.forward import schedule_reply

    schedule_reply(result.complaint_id)
    flash(request, f"Aduan #{complaint_id} tercatat di LAPOR! dengan nomor {result.tracking_id}.")
    return _redirect("/lapor/manual")


@router.post("/aduan/{complaint_id}/status")
async def record_status(complaint_id: int, request: Request, db: Session = Depends(get_db),
                        user: User = Depends(require_role(*FORWARD_ROLES))) -> Response:
    """Record the status an admin sees in LAPOR! (manual-entry deployments)."""
    form = await _form(request)
    try:
        status_sync.record_manual_status(session=db, complaint_id=complaint_id,
                                         status=form.get("status", "")[:64], actor=user.username)
    except ValueError as exc:
        db.rollback()
        flash(request, f"Status tidak tersimpan: {exc}", "error")
        return _redirect("/lapor")
    flash(request, f"Status aduan #{complaint_id} diperbarui.")
    back = form.get("next", "")
    return _redirect(back if back.startswith("/lapor") else "/lapor")


@router.get("/{outbox_id}")
def detail(outbox_id: int, request: Request, db: Session = Depends(get_db),
           user: User = Depends(require_role(*FORWARD_ROLES))) -> Response:
    """One item: the complaint as sent, every attempt, status history and handling times."""
    item = db.get(OutboxItem, outbox_id)
    if item is None:
        return render(request, "not_found.html", status_code=404)
    complaint = db.get(Complaint, item.complaint_id)
    assert complaint is not None
    from pipelines.models import ComplaintStatusEvent

    events = db.query(ComplaintStatusEvent).filter(ComplaintStatusEvent.complaint_id == complaint.id).order_by(
        ComplaintStatusEvent.changed_at).all()
    times = status_sync.times_for(session=db, complaint=complaint)
    return render(request, "forwarding/detail.html", {
        "item": item, "complaint": complaint, "fields": copy_ready_fields(complaint),
        "attempts": outbox.attempts_of(session=db, outbox_id=outbox_id), "events": events,
        "times": times, "overdue": [OVERDUE_NAMES.get(step, step) for step in times.overdue],
        "link": public_link(complaint.tracking_id, request.app.state.settings) if complaint.tracking_id else None,
        "STATE_NAMES": STATE_NAMES, "ATTEMPT_NAMES": ATTEMPT_NAMES, "VIA_NAMES": VIA_NAMES,
        "flash": pop_flash(request),
    })
