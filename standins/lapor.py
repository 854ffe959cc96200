"""A local stand-in for the LAPOR! SP4N API, serving exactly the contract in docs/lapor-api.md.

In-memory state that tests and the demo can load and inspect, plus fault-injection knobs (all driven
by one seeded RNG so a run is reproducible):

- ``failure_rate``: answer 500 *before* storing anything;
- ``timeout_rate``: store the complaint, then stall longer than the client waits (the request
  succeeded but the client never hears so: the case exactly-once delivery must survive);
- ``validation_error_rate``: answer 422 as for an invalid report;
- ``down_until``: answer 503 to everything until this ``time.time()``;
- ``honour_idempotency``: when False the server ignores the Idempotency-Key header, so only our
  lookup-before-resend protects against duplicates;
- ``hang_next_submits``: the next N submissions are stored, then ``hung`` is set and the answer is
  held for ``hang_seconds`` (a test kills the worker while it waits).
- ``trickle_seconds``: answers to submissions and lookups are sent a few bytes at a time, spread over
  this many seconds: every read gets data well within a per-read timeout, yet the answer takes long.
"""

from __future__ import annotations

import asyncio
import html
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

CATEGORIES = [
    {"id": 1, "name": "Infrastruktur"},
    {"id": 2, "name": "Perhubungan"},
    {"id": 3, "name": "Lingkungan Hidup dan Kehutanan"},
    {"id": 4, "name": "Kesehatan"},
    {"id": 5, "name": "Pendidikan dan Kebudayaan"},
    {"id": 6, "name": "Kependudukan dan Catatan Sipil"},
    {"id": 7, "name": "Ketenteraman, Ketertiban Umum, dan Perlindungan Masyarakat"},
    {"id": 8, "name": "Sumber Daya Air"},
    {"id": 9, "name": "Lainnya"},
]

INITIAL_STATUS = "Belum Terverifikasi"


@dataclass
class LaporReport:
    tracking_id: str
    fields: dict[str, Any]
    external_ref: str | None
    status: str
    created_at: datetime
    history: list[tuple[str, datetime]]

    def as_json(self) -> dict[str, Any]:
        return {
            "trackingid": self.tracking_id,
            "status": self.status,
            "external_ref": self.external_ref,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.history[-1][1].isoformat(),
            "history": [{"status": s, "at": at.isoformat()} for s, at in self.history],
        }


@dataclass
class LaporState:
    """Everything the stand-in knows; tests read and tweak it directly."""

    token: str | None = "standin-lapor-token"
    seed: int = 1708
    failure_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 5.0
    validation_error_rate: float = 0.0
    down_until: float = 0.0
    honour_idempotency: bool = True
    hang_next_submits: int = 0
    hang_seconds: float = 30.0
    trickle_seconds: float = 0.0
    first_tracking_id: int = 5300001
    reports: dict[str, LaporReport] = field(default_factory=dict)
    by_ref: dict[str, str] = field(default_factory=dict)
    submit_requests: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(self.seed)
        self._next = self.first_tracking_id
        self.hung = threading.Event()

    def reset_faults(self) -> None:
        """Back to a well-behaved server (keeps the stored reports)."""
        self.failure_rate = self.timeout_rate = self.validation_error_rate = 0.0
        self.down_until = 0.0

    def go_down(self, seconds: float) -> None:
        """Answer 503 to everything for the next ``seconds``."""
        self.down_until = time.time() + seconds

    def set_status(self, tracking_id: str, status: str, at: datetime | None = None) -> None:
        """Move a report to a new status (what LAPOR! admins and the agency do)."""
        with self.lock:
            report = self.reports[tracking_id]
            report.status = status
            report.history.append((status, at or datetime.now(UTC)))

    def count_by_ref(self) -> dict[str | None, int]:
        """How many stored reports carry each external reference (duplicates show as > 1)."""
        counts: dict[str | None, int] = {}
        with self.lock:
            for report in self.reports.values():
                counts[report.external_ref] = counts.get(report.external_ref, 0) + 1
        return counts

    def _roll(self) -> float:
        with self.lock:
            return self.rng.random()

    def _store(self, fields: dict[str, Any], key: str | None) -> tuple[LaporReport, bool]:
        with self.lock:
            self.submit_requests += 1
            if key and self.honour_idempotency and key in self.by_ref:
                return self.reports[self.by_ref[key]], False
            tracking_id = str(self._next)
            self._next += 1
            now = datetime.now(UTC)
            report = LaporReport(tracking_id, fields, key, INITIAL_STATUS, now, [(INITIAL_STATUS, now)])
            self.reports[tracking_id] = report
            if key and key not in self.by_ref:
                self.by_ref[key] = tracking_id
            return report, True


TRICKLE_PIECES = 20


def _trickled(response: JSONResponse, seconds: float) -> Response:
    """``response`` unchanged, or (``seconds`` > 0) its body sent in small pieces spread over ``seconds``."""
    if seconds <= 0:
        return response
    body = bytes(response.body)
    size = max(1, -(-len(body) // TRICKLE_PIECES))

    async def pieces() -> Any:
        for start in range(0, len(body), size):
            await asyncio.sleep(seconds / TRICKLE_PIECES)
            yield body[start : start + size]

    return StreamingResponse(pieces(), status_code=response.status_code, media_type="application/json",
                             headers={"Content-Length": str(len(body))})


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


REQUIRED = ("judul", "isi")


def create_app(state: LaporState | None = None) -> FastAPI:
    """The stand-in's FastAPI app over ``state``."""
    state = state or LaporState()
    app = FastAPI(title="LAPOR! stand-in", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.lapor = state

    def gate(request: Request, *, faults: bool = True) -> JSONResponse | str | None:
        """Downtime, auth and random failures; returns an error response, 'timeout', or None."""
        with state.lock:
            state.requests += 1
        if time.time() < state.down_until:
            return _error(503, "unavailable", "LAPOR! sedang dalam pemeliharaan")
        if state.token is not None and request.headers.get("authorization") != f"Bearer {state.token}":
            return _error(401, "unauthorized", "token tidak valid")
        if faults:
            roll = state._roll()
            if roll < state.failure_rate:
                return _error(500, "internal", "kesalahan server")
            if roll < state.failure_rate + state.timeout_rate:
                return "timeout"
        return None

    @app.get("/api/v1/categories")
    async def categories(request: Request) -> Any:
        problem = gate(request, faults=False)
        if isinstance(problem, JSONResponse):
            return problem
        return {"data": CATEGORIES}

    @app.post("/api/v1/reports")
    async def submit(request: Request) -> Any:
        problem = gate(request)
        if isinstance(problem, JSONResponse):
            return problem
        try:
            payload = await request.json()
        except ValueError:
            return _error(400, "bad_json", "body bukan JSON")
        if not isinstance(payload, dict):
            return _error(400, "bad_json", "body harus objek JSON")
        invalid = {
            name: "wajib diisi" for name in REQUIRED if not str(payload.get(name) or "").strip()
        }
        if len(str(payload.get("judul") or "")) > 300:
            invalid["judul"] = "maksimal 300 karakter"
        if not invalid and state.validation_error_rate and state._roll() < state.validation_error_rate:
            invalid["isi"] = "isi laporan tidak memenuhi ketentuan"
        if invalid:
            return _error(422, "validation", "laporan tidak valid", fields=invalid)
        key = request.headers.get("idempotency-key") or payload.get("external_ref")
        report, created = state._store(payload, str(key) if key else None)
        with state.lock:
            hang = state.hang_next_submits > 0
            state.hang_next_submits -= int(hang)
        if hang:
            state.hung.set()
            await asyncio.sleep(state.hang_seconds)
        elif problem == "timeout":
            await asyncio.sleep(state.timeout_seconds)  # stored, but the client gives up first
        return _trickled(JSONResponse(report.as_json(), status_code=201 if created else 200), state.trickle_seconds)

    @app.get("/api/v1/reports")
    async def lookup(request: Request, external_ref: str = "") -> Any:
        problem = gate(request)
        if isinstance(problem, JSONResponse):
            return problem
        if problem == "timeout":
            await asyncio.sleep(state.timeout_seconds)
        with state.lock:
            found = [r.as_json() for r in state.reports.values() if external_ref and r.external_ref == external_ref]
        return _trickled(JSONResponse({"data": found[:1]}), state.trickle_seconds)

    @app.get("/api/v1/reports/{tracking_id}")
    async def status(request: Request, tracking_id: str) -> Any:
        problem = gate(request)
        if isinstance(problem, JSONResponse):
            return problem
        if problem == "timeout":
            await asyncio.sleep(state.timeout_seconds)
        report = state.reports.get(tracking_id)
        if report is None:
            return _error(404, "not_found", "laporan tidak ditemukan")
        return report.as_json()

    # --- stand-in only: the public page and controls for the demo ---------------------------------

    @app.get("/pengaduan/{tracking_id}", response_class=HTMLResponse)
    async def public_page(tracking_id: str) -> Any:
        report = state.reports.get(tracking_id)
        if report is None:
            return HTMLResponse("<h1>Laporan tidak ditemukan</h1>", status_code=404)
        title = "Laporan rahasia" if report.fields.get("rahasia") else str(report.fields.get("judul", ""))
        return (
            "<!doctype html><meta charset=utf-8><title>LAPOR! (stand-in)</title>"
            f"<h1>#{html.escape(report.tracking_id)}</h1><p>{html.escape(title)}</p>"
            f"<p>Status: {html.escape(report.status)}</p>"
        )

    @app.get("/_standin/reports")
    async def all_reports() -> Any:
        with state.lock:
            return {
                "count": len(state.reports),
                "data": [{**r.as_json(), "judul": r.fields.get("judul")} for r in state.reports.values()],
            }

    @app.post("/_standin/reports/{tracking_id}/status")
    async def move_status(tracking_id: str, request: Request) -> Any:
        body = await request.json()
        if tracking_id not in state.reports:
            return _error(404, "not_found", "laporan tidak ditemukan")
        state.set_status(tracking_id, str(body.get("status") or INITIAL_STATUS))
        return state.reports[tracking_id].as_json()

    @app.post("/_standin/faults")
    async def set_faults(request: Request) -> Any:
        body = await request.json()
        with state.lock:
            for name in ("failure_rate", "timeout_rate", "timeout_seconds", "validation_error_rate"):
                if name in body:
                    setattr(state, name, float(body[name]))
            if "honour_idempotency" in body:
                state.honour_idempotency = bool(body["honour_idempotency"])
            if "seed" in body:
                state.rng.seed(int(body["seed"]))
        if "down_seconds" in body:
            state.go_down(float(body["down_seconds"]))
        return {"ok": True}

    @app.get("/_standin/stats")
    async def stats() -> Any:
        counts = state.count_by_ref()
        return {
            "reports": len(state.reports),
            "requests": state.requests,
            "submit_requests": state.submit_requests,
            "duplicates": sum(n - 1 for n in counts.values() if n > 1),
            "refs": len(counts),
        }

    return app


def main() -> None:  # pragma: no cover - manual use: python -m standins.lapor [port] [token]
    """Serve the stand-in on 127.0.0.1 in its own process (by hand, and for bench/bench_forward.py)."""
    import sys

    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    token = sys.argv[2] if len(sys.argv) > 2 else "standin-lapor-token"
    uvicorn.run(create_app(LaporState(token=token)), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":  # pragma: no cover
    main()
