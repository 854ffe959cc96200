"""Accounts, sessions, CSRF and roles for the web app (and for every router mounted in it).

- Passwords: argon2id (argon2-cffi), rehashed on login when the parameters change.
- Session: one signed cookie (itsdangerous, the app's secret key) holding the user id, a fingerprint
  of the password hash, role, active flag and session epoch (a password change, deactivation or
  logout ends every session of the account, a copied cookie included) and the CSRF token.
  HttpOnly, SameSite=Lax, Secure in production, 12 hours.
- CSRF: ``SessionCsrfMiddleware`` refuses every POST/PUT/PATCH/DELETE whose ``csrf_token`` form field
  or ``X-CSRF-Token`` header does not match the session's token (and any cross-origin ``Origin``),
  except under the signature-checked webhook prefix. Routers get it for free; templates use
  ``{{ csrf_input() }}``.
- Roles: ``require_role("reviewer")`` is a dependency returning the User; admins pass every check.
- Login rate limit: failures are audit-logged; 5 failures for one username in 15 minutes lock it
  for the rest of the window (across processes: the count is in the database), plus a per-client cap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders

from pipelines import audit
from pipelines.models import AuditLog, Role, User, utcnow

SESSION_COOKIE = "jaring_session"
SESSION_MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_EXEMPT_PREFIXES = ("/webhooks",)  # Meta webhooks: authenticated by X-Hub-Signature-256 instead
MAX_FORM_BYTES = 2 * 1024 * 1024
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_MAX_FAILURES_PER_USER = 5
LOGIN_MAX_FAILURES_PER_CLIENT = 30
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ROLES = tuple(r.value for r in Role)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("jaring-timing-equaliser")

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


# --- passwords ------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash`` (False on any malformed hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str) -> str | None:
    """A problem with a new password (Bahasa Indonesia), or None when it is acceptable."""
    if len(password) < 10:
        return "Kata sandi minimal 10 karakter."
    if len(password) > 256:
        return "Kata sandi terlalu panjang."
    return None


def create_user(*, session: Session, username: str, password: str, role: str, actor: str,
                full_name: str = "") -> User:
    """Add a user (validated, password hashed, audit-logged); the caller commits."""
    username = username.strip().lower()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-" for c in username):
        raise ValueError("Nama pengguna hanya boleh huruf, angka, titik, garis bawah dan tanda hubung.")
    if role not in ROLES:
        raise ValueError(f"Peran harus salah satu dari: {', '.join(ROLES)}.")
    problem = check_password_strength(password)
    if problem:
        raise ValueError(problem)
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise ValueError("Nama pengguna sudah dipakai.")
    user = User(username=username, full_name=full_name[:200], password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    audit.record(session=session, actor=actor, action="user.create", object_type="user", object_id=user.id,
                 details={"username": username, "role": role})
    return user


def _fingerprint(user: User) -> str:
    material = f"{user.password_hash}|{user.role}|{user.is_active}|{user.session_epoch or 0}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


# --- login rate limiting --------------------------------------------------------------------------

_client_failures: dict[str, deque[float]] = defaultdict(deque)


def _recent_client_failures(client: str) -> int:
    window = _client_failures[client]
    cutoff = time.monotonic() - LOGIN_WINDOW.total_seconds()
    while window and window[0] < cutoff:
        window.popleft()
    return len(window)


def login_locked(*, session: Session, username: str, client: str) -> bool:
    """True when this username or this client failed too often in the last 15 minutes."""
    if _recent_client_failures(client) >= LOGIN_MAX_FAILURES_PER_CLIENT:
        return True
    failures = session.scalar(
        sa.select(sa.func.count()).select_from(AuditLog).where(
            AuditLog.object_type == "login", AuditLog.object_id == username[:64],
            AuditLog.action == "auth.login_failed", AuditLog.at >= utcnow() - LOGIN_WINDOW,
        )
    )
    return int(failures or 0) >= LOGIN_MAX_FAILURES_PER_USER


def authenticate(*, session: Session, username: str, password: str, client: str) -> User | None:
    """The active user with these credentials, or None (the failure is audit-logged; caller commits)."""
    username = username.strip().lower()[:64]
    user = session.scalar(sa.select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password[:256])
    if not ok or user is None or not user.is_active:
        _client_failures[client].append(time.monotonic())
        audit.record(session=session, actor=f"anonymous:{client}"[:64], action="auth.login_failed",
                     object_type="login", object_id=username, details={"client": client})
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    audit.record(session=session, actor=user.username, action="auth.login", object_type="user",
                 object_id=user.id, details={"client": client})
    return user


# --- the session cookie ---------------------------------------------------------------------------


class SessionCsrfMiddleware:
    """Signed-cookie sessions and CSRF checks for every state-changing request (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, secret_key: str, secure: bool) -> None:
        self.app = app
        self.serializer = URLSafeTimedSerializer(secret_key, salt="jaring.session")
        self.secure = secure

    def _load(self, scope: MutableMapping[str, Any]) -> dict[str, Any] | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(value.decode("latin-1"))
                except Exception:  # noqa: BLE001 - a malformed cookie header is just "no session"
                    return None
                morsel = cookie.get(SESSION_COOKIE)
                if morsel is None:
                    continue
                try:
                    data = self.serializer.loads(morsel.value, max_age=SESSION_MAX_AGE)
                except BadSignature:
                    return None
                return data if isinstance(data, dict) and isinstance(data.get("csrf"), str) else None
        return None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        data = self._load(scope)
        fresh = data is None
        session: dict[str, Any] = data or {"csrf": secrets.token_urlsafe(32)}
        scope.setdefault("state", {})
        scope["state"]["session"] = session
        scope["state"]["session_dirty"] = fresh

        path: str = scope.get("path", "")
        if scope["method"] in UNSAFE_METHODS and not path.startswith(CSRF_EXEMPT_PREFIXES):
            receive, refused = await self._check_csrf(scope, receive, session, fresh)
            if refused:
                await _plain_response(send, 403, "Permintaan ditolak: token CSRF tidak valid.")
                return

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and scope["state"].get("session_dirty"):
                headers = MutableHeaders(scope=message)
                current = scope["state"]["session"]
                if current is None:
                    headers.append("set-cookie", self._cookie("", max_age=0))
                else:
                    headers.append("set-cookie", self._cookie(self.serializer.dumps(current), SESSION_MAX_AGE))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, value: str, max_age: int) -> str:
        parts = [f"{SESSION_COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    async def _check_csrf(
        self, scope: MutableMapping[str, Any], receive: Any, session: dict[str, Any], fresh: bool
    ) -> tuple[Any, bool]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != headers.get("host", ""):
            return receive, True
        if fresh:
            return receive, True  # no session, so no token can match
        expected = session["csrf"]
        token = headers.get(CSRF_HEADER)
        if token is None:
            body, too_big = await _read_body(receive)
            receive = _replay(body)
            if too_big:
                return receive, True
            token = await _form_token(scope, body)
        return receive, not (token and hmac.compare_digest(token.encode(), expected.encode()))


async def _read_body(receive: Any) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _form_token(scope: MutableMapping[str, Any], body: bytes) -> str | None:
    request = Request(dict(scope), receive=_replay(body))
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - an unparsable form carries no valid token
        return None
    value = form.get(CSRF_FIELD)
    await form.close()
    return value if isinstance(value, str) else None


async def _plain_response(send: Any, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def session_data(request: Request) -> dict[str, Any]:
    """The current session dict (always present behind the middleware)."""
    return request.state.session


def csrf_token(request: Request) -> str:
    """The CSRF token to put in forms (field ``csrf_token``) or in the ``X-CSRF-Token`` header."""
    return str(session_data(request)["csrf"])


def csrf_input(request: Request) -> Markup:
    """A hidden form field carrying the CSRF token."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(csrf_token(request)))


def verify_csrf(request: Request) -> None:
    """Dependency for routers that want it explicit; refuses when the CSRF middleware is not installed."""
    if request.method in UNSAFE_METHODS and getattr(request.state, "session", None) is None:
        raise Forbidden()


def start_session(request: Request, user: User) -> None:
    """Log ``user`` in: a new session (new CSRF token) so nothing from before login carries over."""
    request.state.session = {"csrf": secrets.token_urlsafe(32), "uid": user.id, "fp": _fingerprint(user)}
    request.state.session_dirty = True


def end_session(request: Request) -> None:
    """Log out: the cookie is replaced by an anonymous session."""
    request.state.session = {"csrf": secrets.token_urlsafe(32)}
    request.state.session_dirty = True


# --- dependencies ---------------------------------------------------------------------------------


def get_db(request: Request) -> Iterator[Session]:
    """A database session for one request (rolled back if the handler did not commit)."""
    factory = request.app.state.session_factory
    with factory() as session:
        yield session


class LoginRequired(Exception):
    """Raised by dependencies when nobody is logged in (the app redirects to the login page)."""


class Forbidden(Exception):
    """Raised by dependencies when the user's role may not do this (the app answers 403)."""


def current_user(request: Request, db: Session = Depends(get_db)) -> User | None:
    """The logged-in, active user, or None."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    data = session_data(request)
    uid = data.get("uid")
    if not isinstance(uid, int):
        return None
    user = db.get(User, uid)
    if user is None or not user.is_active or not hmac.compare_digest(str(data.get("fp", "")), _fingerprint(user)):
        end_session(request)
        return None
    request.state.user = user
    return user


def require_role(*roles: str) -> Callable[..., User]:
    """Dependency: the logged-in user if their role is one of ``roles`` (admins always pass)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {unknown}")

    def dependency(user: User | None = Depends(current_user)) -> User:
        if user is None:
            raise LoginRequired()
        if user.role != Role.ADMIN.value and user.role not in roles:
            raise Forbidden()
        return user

    return dependency


ALL_ROLES = ROLES
STAFF_ROLES = (Role.REVIEWER.value, Role.ANALYST.value, Role.ADMIN.value)

# Aliases other routers may reach for.
get_session = get_db
csrf_protect = verify_csrf
