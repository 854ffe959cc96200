"""The review web app: humas inbox, post view, complaint composer, dashboard, exports, accounts.

``create_app(settings)`` builds a FastAPI app served by ``jaring serve``. Everything is server-rendered
(Jinja2, autoescape on) with one small same-origin script; a strict Content-Security-Policy makes
any page that tries to load something from another origin (or run inline script) fail loudly.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import sessionmaker

from classifier.city import load_city
from jaring.db import make_engine
from jaring.settings import Settings, get_settings
from review.auth import STAFF_ROLES, Forbidden, LoginRequired, SessionCsrfMiddleware
from review.templating import render

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Routers owned by other parts of the system, included when present: (module, attribute).
OPTIONAL_ROUTERS = (("review.webhooks", "router"), ("review.forwarding_views", "router"))
STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the web app for ``settings`` (default: the environment). Refuses a default secret in production."""
    settings = settings or get_settings()
    settings.require_production_secrets()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="Jaring", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = sessionmaker(bind=engine, expire_on_commit=False)
    app.state.city = load_city(settings.city_file)
    app.state.nav_links = [
        ("Kotak masuk", "/kotak-masuk", STAFF_ROLES),
        ("Dasbor", "/dasbor", ("viewer", *STAFF_ROLES)),
        ("Ekspor", "/ekspor", STAFF_ROLES),
    ]

    app.add_middleware(SessionCsrfMiddleware, secret_key=settings.secret_key.get_secret_value(),
                       secure=settings.environment == "production")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # Server time of this request, for the browser's devtools and bench/bench_inbox.py.
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        for name, value in SECURITY_HEADERS.items():
            if name == "Cache-Control" and request.url.path.startswith("/static/"):
                continue
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/masuk?next={_quote(target)}", status_code=303)
        return PlainTextResponse("Silakan masuk terlebih dahulu.", status_code=401)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, _exc: Forbidden) -> Response:
        return render(request, "forbidden.html", status_code=403)

    from review import account_views, dashboard_views, media, views

    app.include_router(account_views.router)
    app.include_router(views.router)
    app.include_router(dashboard_views.router)
    app.include_router(media.router)
    for module_name, attribute in OPTIONAL_ROUTERS:
        router, nav = _optional_router(module_name, attribute)
        if router is not None:
            app.include_router(router)
            app.state.nav_links.extend(nav)
    app.state.nav_links.append(("Pengguna", "/admin/pengguna", ("admin",)))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _optional_router(module_name: str, attribute: str) -> tuple[Any, list[Any]]:
    """A router from another part of the system, with its optional NAV_LINKS; (None, []) if not built yet."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists but something it imports is missing: that is a real error
        log.info("router %s not present; skipping", module_name)
        return None, []
    return getattr(module, attribute), list(getattr(module, "NAV_LINKS", []))


def _quote(target: str) -> str:
    from urllib.parse import quote

    return quote(target, safe="")
