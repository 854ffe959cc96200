"""Log in, log out, and admin user management."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from pipelines import audit
from pipelines.models import User
from review.auth import (
    ROLES,
    authenticate,
    check_password_strength,
    create_user,
    current_user,
    end_session,
    get_db,
    hash_password,
    login_locked,
    require_role,
    start_session,
)
from review.templating import render
from review.views import flash, pop_flash, safe_next

router = APIRouter()


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/masuk")
def login_form(request: Request, user: User | None = Depends(current_user)) -> Response:
    """The login page."""
    if user is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "account/login.html", {"next": safe_next(request.query_params.get("next"), "/"),
                                                  "error": None, "username": "", "flash": pop_flash(request)})


@router.post("/masuk")
async def login(request: Request, db: Session = Depends(get_db)) -> Response:
    """Check credentials (rate-limited) and start a session."""
    form = await request.form()
    username = str(form.get("username") or "").strip().lower()[:64]
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""), "/")
    client = _client(request)
    if login_locked(session=db, username=username, client=client):
        audit.record(session=db, actor=f"anonymous:{client}"[:64], action="auth.login_locked", object_type="user",
                     object_id=username, details={"client": client})
        db.commit()
        return render(request, "account/login.html", {
            "next": target, "username": username, "flash": None,
            "error": "Terlalu banyak percobaan gagal. Coba lagi dalam 15 menit."}, status_code=429)
    user = authenticate(session=db, username=username, password=password, client=client)
    db.commit()
    if user is None:
        return render(request, "account/login.html", {
            "next": target, "username": username, "flash": None,
            "error": "Nama pengguna atau kata sandi salah."}, status_code=401)
    start_session(request, user)
    if user.role == "viewer" and target == "/":
        target = "/dasbor"
    return RedirectResponse(target, status_code=303)


@router.post("/keluar")
def logout(request: Request, user: User | None = Depends(current_user), db: Session = Depends(get_db)) -> Response:
    """End the session, and every other session of the account (a copied cookie stops working too)."""
    if user is not None:
        user.session_epoch = (user.session_epoch or 0) + 1
        audit.record(session=db, actor=user.username, action="auth.logout", object_type="user", object_id=user.id,
                     details={})
        db.commit()
    end_session(request)
    flash(request, "Anda telah keluar.")
    return RedirectResponse("/masuk", status_code=303)


@router.get("/admin/pengguna")
def users_page(request: Request, _admin: User = Depends(require_role("admin")),
               db: Session = Depends(get_db)) -> Response:
    """Every account, with forms to add one and change role, status or password."""
    users = list(db.scalars(sa.select(User).order_by(User.username)))
    return render(request, "account/users.html", {"users": users, "roles": ROLES, "flash": pop_flash(request)})


@router.post("/admin/pengguna")
async def add_user(request: Request, admin: User = Depends(require_role("admin")),
                   db: Session = Depends(get_db)) -> Response:
    """Create an account."""
    form = await request.form()
    try:
        user = create_user(session=db, username=str(form.get("username") or ""), password=str(form.get("password") or ""),
                           role=str(form.get("role") or ""), actor=admin.username,
                           full_name=str(form.get("full_name") or ""))
        db.commit()
    except ValueError as exc:
        db.rollback()
        flash(request, str(exc), "error")
    else:
        flash(request, f"Pengguna {user.username} dibuat.")
    return RedirectResponse("/admin/pengguna", status_code=303)


@router.post("/admin/pengguna/{user_id}")
async def update_user(user_id: int, request: Request, admin: User = Depends(require_role("admin")),
                      db: Session = Depends(get_db)) -> Response:
    """Change a user's role, deactivate/reactivate, or set a new password (ends their sessions)."""
    form = await request.form()
    user = db.get(User, user_id)
    if user is None:
        flash(request, "Pengguna tidak ditemukan.", "error")
        return RedirectResponse("/admin/pengguna", status_code=303)
    changes: dict[str, object] = {}
    role = str(form.get("role") or "")
    if role and role != user.role:
        if role not in ROLES:
            flash(request, "Peran tidak dikenal.", "error")
            return RedirectResponse("/admin/pengguna", status_code=303)
        changes["role"] = [user.role, role]
        user.role = role
    active = form.get("active")
    if active in ("0", "1") and (active == "1") != user.is_active:
        if user.id == admin.id:
            flash(request, "Anda tidak dapat menonaktifkan akun sendiri.", "error")
            return RedirectResponse("/admin/pengguna", status_code=303)
        user.is_active = active == "1"
        changes["active"] = user.is_active
    password = str(form.get("password") or "")
    if password:
        problem = check_password_strength(password)
        if problem:
            flash(request, problem, "error")
            return RedirectResponse("/admin/pengguna", status_code=303)
        user.password_hash = hash_password(password)
        changes["password"] = "reset"  # noqa: S105 - a marker, not a password
    if changes:
        audit.record(session=db, actor=admin.username, action="user.update", object_type="user", object_id=user.id,
                     details=changes)
        db.commit()
        flash(request, f"Pengguna {user.username} diperbarui.")
    return RedirectResponse("/admin/pengguna", status_code=303)
