"""Inbox, post view, review actions and the complaint composer (thin handlers over the services)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from pipelines import review_actions
from pipelines.complaints import draft_from_post
from pipelines.models import AuditLog, Classification, Complaint, OutboxItem, Post, User
from review.auth import STAFF_ROLES, current_user, get_db, require_role
from review.inbox import PLATFORMS, STATUSES, InboxFilters, capped_count, inbox_page
from review.templating import render

router = APIRouter()
ACTOR_ROLES = ("reviewer",)  # admins pass every role check too


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page."""
    request.state.session["flash"] = [kind, message[:500]]
    request.state.session_dirty = True


def pop_flash(request: Request) -> list[str] | None:
    """Take the pending one-time message, if any."""
    message = request.state.session.pop("flash", None)
    if message is not None:
        request.state.session_dirty = True
    return message


def safe_next(target: str | None, default: str) -> str:
    """A local path to go back to (never another site)."""
    # Browsers drop tabs and newlines inside URLs ("/\t/evil" becomes "//evil"), so refuse any control
    # character or whitespace as well as "//" and backslashes.
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target)):
        return target[:2000]
    return default


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/")
def home(user: User | None = Depends(current_user)) -> Response:
    """Send each role to its first page."""
    if user is None:
        return _redirect("/masuk")
    return _redirect("/dasbor" if user.role == "viewer" else "/kotak-masuk")


@router.get("/kotak-masuk")
def inbox(request: Request, user: User = Depends(require_role(*STAFF_ROLES)),
          db: Session = Depends(get_db)) -> Response:
    """The queue of captured posts, most urgent and least certain first."""
    filters = InboxFilters.from_query(request.query_params)
    page = inbox_page(session=db, filters=filters, cursor=request.query_params.get("setelah"))
    city = request.app.state.city
    return render(request, "inbox/list.html", {
        "filters": filters, "page": page, "city": city, "statuses": STATUSES, "platforms": PLATFORMS,
        "waiting": capped_count(session=db, status="queued"), "flash": pop_flash(request),
        "can_act": user.role in ("reviewer", "admin"), "query": filters.as_query(),
        "self_url": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    })


@router.get("/kiriman/{post_id}")
def post_view(post_id: int, request: Request, user: User = Depends(require_role(*STAFF_ROLES)),
              db: Session = Depends(get_db)) -> Response:
    """One post: the original, the classifier's explanation, its group, its thread and its history."""
    post = db.get(Post, post_id)
    if post is None:
        return render(request, "not_found.html", status_code=404)
    classification = db.scalar(sa.select(Classification).where(Classification.post_id == post_id)
                               .order_by(Classification.id.desc()).limit(1))
    members = review_actions.group_members(session=db, post=post)
    thread: list[Post] = []
    if post.thread_external_id:
        thread = list(db.scalars(
            sa.select(Post).where(Post.platform == post.platform,
                                  sa.or_(Post.thread_external_id == post.thread_external_id,
                                         Post.external_id == post.thread_external_id), Post.id != post.id)
            .order_by(Post.created_at, Post.id).limit(30)))
    complaint = db.scalar(sa.select(Complaint).where(Complaint.post_id == post_id))
    history = _history(db, post_id=post_id, complaint_id=complaint.id if complaint else None)
    return render(request, "inbox/post.html", {
        "post": post, "classification": classification, "explanation": _explanation(classification),
        "members": members, "thread": thread, "complaint": complaint, "history": history,
        "city": request.app.state.city, "flash": pop_flash(request),
        "can_act": user.role in ("reviewer", "admin"),
        "next": safe_next(request.query_params.get("kembali"), "/kotak-masuk"),
        "media": [m for m in (post.media or []) if isinstance(m, dict)][:8],
    })


def _explanation(classification: Classification | None) -> dict[str, list[tuple[str, float]]]:
    """head -> [(term, weight)], tolerant of whatever shape got stored."""
    result: dict[str, list[tuple[str, float]]] = {}
    if classification is None or not isinstance(classification.explanation, dict):
        return result
    for head, terms in classification.explanation.items():
        rows: list[tuple[str, float]] = []
        for item in terms if isinstance(terms, list) else []:
            if isinstance(item, list | tuple) and len(item) == 2:
                try:
                    rows.append((str(item[0])[:80], float(item[1])))
                except (TypeError, ValueError):
                    continue
        result[str(head)[:32]] = rows[:10]
    return result


def _history(db: Session, *, post_id: int, complaint_id: int | None) -> list[AuditLog]:
    conditions = [sa.and_(AuditLog.object_type == "post", AuditLog.object_id == str(post_id))]
    if complaint_id is not None:
        conditions.append(sa.and_(AuditLog.object_type == "complaint", AuditLog.object_id == str(complaint_id)))
        outbox_ids = db.scalars(sa.select(OutboxItem.id).where(OutboxItem.complaint_id == complaint_id))
        for outbox_id in outbox_ids:
            conditions.append(sa.and_(AuditLog.object_type == "outbox", AuditLog.object_id == str(outbox_id)))
    return list(db.scalars(sa.select(AuditLog).where(sa.or_(*conditions)).order_by(AuditLog.at, AuditLog.id).limit(200)))


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    data: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        data[key] = [v for v in values if isinstance(v, str)] if len(values) > 1 or key == "ids" else (
            values[0] if isinstance(values[0], str) else "")
    return data


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip().lstrip("#"))
    except ValueError:
        return None


@router.post("/kiriman/{post_id}/konfirmasi")
async def confirm_post(post_id: int, request: Request, user: User = Depends(require_role(*ACTOR_ROLES)),
                       db: Session = Depends(get_db)) -> Response:
    """Confirm as a complaint, optionally with a corrected topic/OPD."""
    form = await _form(request)
    back = safe_next(form.get("next"), "/kotak-masuk")
    try:
        review_actions.confirm(session=db, post_id=post_id, user=user, topic=form.get("topic") or None,
                               agency=form.get("agency") or None, note=form.get("note", ""),
                               city=request.app.state.city)
        db.commit()
    except review_actions.ActionError as exc:
        db.rollback()
        flash(request, str(exc), "error")
        return _redirect(f"/kiriman/{post_id}")
    flash(request, f"Kiriman #{post_id} dikonfirmasi sebagai keluhan.")
    if form.get("compose"):
        return _redirect(f"/kiriman/{post_id}/aduan")
    return _redirect(back)


@router.post("/kiriman/{post_id}/tolak")
async def reject_post(post_id: int, request: Request, user: User = Depends(require_role(*ACTOR_ROLES)),
                      db: Session = Depends(get_db)) -> Response:
    """Reject: not a complaint, spam, or duplicate of another post."""
    form = await _form(request)
    back = safe_next(form.get("next"), "/kotak-masuk")
    try:
        review_actions.reject(session=db, post_id=post_id, user=user, reason=form.get("reason", ""),
                              duplicate_of_id=_int(form.get("duplicate_of")), note=form.get("note", ""))
        db.commit()
    except review_actions.ActionError as exc:
        db.rollback()
        flash(request, str(exc), "error")
        return _redirect(f"/kiriman/{post_id}")
    flash(request, f"Kiriman #{post_id} ditolak.")
    return _redirect(back)


@router.post("/kotak-masuk/massal")
async def bulk_action(request: Request, user: User = Depends(require_role(*ACTOR_ROLES)),
                      db: Session = Depends(get_db)) -> Response:
    """Confirm or reject every selected post."""
    form = await _form(request)
    back = safe_next(form.get("next"), "/kotak-masuk")
    ids = [i for i in (_int(v) for v in form.get("ids", [])) if i is not None]
    action = form.get("action", "")
    if not ids:
        flash(request, "Pilih minimal satu kiriman.", "error")
        return _redirect(back)
    try:
        if action == "confirm":
            result = review_actions.bulk_confirm(session=db, post_ids=ids, user=user)
        elif action.startswith("reject:"):
            result = review_actions.bulk_reject(session=db, post_ids=ids, user=user, reason=action[7:],
                                                duplicate_of_id=_int(form.get("duplicate_of")))
        else:
            raise review_actions.ActionError("Tindakan tidak dikenal.")
        db.commit()
    except review_actions.ActionError as exc:
        db.rollback()
        flash(request, str(exc), "error")
        return _redirect(back)
    message = f"{len(result.done)} kiriman diproses."
    if result.skipped:
        message += f" {len(result.skipped)} dilewati (sudah ditangani pengguna lain)."
    flash(request, message, "ok" if not result.skipped else "warn")
    return _redirect(back)


# --- composer -------------------------------------------------------------------------------------


@router.get("/kiriman/{post_id}/aduan")
def composer(post_id: int, request: Request, _user: User = Depends(require_role(*ACTOR_ROLES)),
             db: Session = Depends(get_db)) -> Response:
    """The complaint composer, prefilled from the post and the city mapping."""
    post = db.get(Post, post_id)
    if post is None:
        return render(request, "not_found.html", status_code=404)
    existing = db.scalar(sa.select(Complaint).where(Complaint.post_id == post_id))
    if existing is not None:
        flash(request, f"Kiriman ini sudah menjadi aduan #{existing.id}.", "warn")
        return _redirect(f"/kiriman/{post_id}")
    city = request.app.state.city
    draft = draft_from_post(post=post, city=city)
    values = draft.as_dict()
    values["incident_date"] = draft.incident_date.date().isoformat() if draft.incident_date else ""
    values["attachment_urls"] = [a["url"] for a in draft.attachments]
    values["include_group"] = False
    return _render_composer(request, db, post, values, {})


def _render_composer(request: Request, db: Session, post: Post, values: dict[str, Any], errors: dict[str, str],
                     status_code: int = 200) -> Response:
    return render(request, "inbox/composer.html", {
        "post": post, "values": values, "errors": errors, "city": request.app.state.city,
        "members": review_actions.group_members(session=db, post=post),
        "media": [m for m in (post.media or []) if isinstance(m, dict) and m.get("url")][:8],
    }, status_code=status_code)


@router.post("/kiriman/{post_id}/aduan")
async def compose(post_id: int, request: Request, user: User = Depends(require_role(*ACTOR_ROLES)),
                  db: Session = Depends(get_db)) -> Response:
    """Validate the composed complaint, queue it for LAPOR! in one transaction, then ask for delivery."""
    post = db.get(Post, post_id)
    if post is None:
        return render(request, "not_found.html", status_code=404)
    data = await _form(request)
    city = request.app.state.city
    urls = data.get("attachments", [])
    urls = [urls] if isinstance(urls, str) else urls
    media_by_url = {m.get("url"): m for m in (post.media or []) if isinstance(m, dict)}
    errors: dict[str, str] = {}
    incident: datetime | None = None
    if data.get("incident_date"):
        try:
            incident = datetime.fromisoformat(data["incident_date"]).replace(tzinfo=UTC)
        except ValueError:
            errors["incident_date"] = "Tanggal kejadian tidak valid."
    form = review_actions.ComplaintForm(
        title=data.get("title", ""), body=data.get("body", ""), category=data.get("category", ""),
        topic=data.get("topic") or None, agency=data.get("agency") or None, instansi=data.get("instansi", ""),
        kecamatan=data.get("kecamatan") or None, kelurahan=data.get("kelurahan") or None,
        location_text=data.get("location_text", ""), incident_date=incident,
        attachments=[{"type": str(media_by_url.get(u, {}).get("type", "")), "url": u} for u in urls],
        anonymous=data.get("anonymous") == "1", confidential=data.get("confidential") == "1",
        include_group=data.get("include_group") == "1",
    )
    errors.update(form.validate(city=city, post=post))
    values = {**data, "attachment_urls": urls, "anonymous": form.anonymous, "confidential": form.confidential,
              "include_group": form.include_group}
    if errors:
        return _render_composer(request, db, post, values, errors, status_code=400)
    try:
        composed = review_actions.compose_complaint(session=db, post_id=post_id, user=user, form=form, city=city,
                                                     settings=request.app.state.settings)
        db.commit()
    except review_actions.ActionError as exc:
        db.rollback()
        if isinstance(exc, review_actions.ActionConflict):
            flash(request, str(exc), "error")
            return _redirect(f"/kiriman/{post_id}")
        return _render_composer(request, db, post, values, {"form": str(exc)}, status_code=400)
    review_actions.schedule_delivery(composed.outbox_id)
    flash(request, f"Aduan #{composed.complaint.id} dibuat dan diantrikan untuk diteruskan ke LAPOR!.")
    return _redirect(f"/kiriman/{post_id}")
