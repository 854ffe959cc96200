"""Senders that deliver a complaint to LAPOR! SP4N: the HTTP API sender and the manual-entry sender.

LAPOR! publishes no integration spec (its API docs live in an instansi's developer account), so the
request/response contract we assume is written down in ``docs/lapor-api.md``, served by
``standins/lapor.py``, and every path, header and field name is configuration
(``lapor_api`` in ``config/forward_policy.yaml``).

Every network call goes through :class:`LaporHttp`, which has a timeout and raises only our error
types (messages in Bahasa Indonesia: reviewers read them on the dead-letter page), classified by what
they mean for exactly-once delivery:

- :class:`LaporTransientError`: the request certainly did not take effect; safe to send again.
- :class:`LaporUnknownOutcome`: the request went out and may have taken effect (a read timeout, a 5xx,
  a dropped connection after sending); look it up by our external reference before sending again.
- :class:`LaporPermanentError`: LAPOR! refused it (4xx validation, bad token); retrying will not help.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from jaring.settings import Settings, get_settings
from pipelines.forward_policy import LaporApiConfig, load_forward_config
from pipelines.models import Complaint

MAX_ERROR_BODY = 500
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024  # LAPOR! takes small files; larger ones are linked in the body


class LaporError(Exception):
    """Base of every error the LAPOR! senders raise."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class LaporTransientError(LaporError):
    """The request did not take effect (connection refused, 429, lookup failed); retry later."""


class LaporUnknownOutcome(LaporError):
    """The request was sent and its outcome is unknown; check LAPOR! before sending it again."""


class LaporPermanentError(LaporError):
    """LAPOR! rejected the request for good (validation error, bad token); a person must act."""


@dataclass(frozen=True)
class Submission:
    """LAPOR!'s answer to a submitted complaint."""

    tracking_id: str
    status: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteStatus:
    """A complaint's status as LAPOR! reports it."""

    tracking_id: str
    status: str
    updated_at: datetime | None = None
    history: tuple[tuple[str, datetime | None], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


class Sender(Protocol):
    """What the outbox needs from a way of getting complaints into LAPOR!."""

    name: str
    manual: bool

    def submit(self, complaint: Complaint, *, idempotency_key: str) -> Submission:
        """Send ``complaint``; returns the tracking id. Raises a :class:`LaporError`."""
        ...

    def find(self, *, idempotency_key: str) -> Submission | None:
        """The complaint LAPOR! already has for ``idempotency_key``, if any."""
        ...

    def status(self, *, tracking_id: str) -> RemoteStatus | None:
        """The current status of ``tracking_id`` (``None`` when unknown to LAPOR!)."""
        ...


_SECRET_PATTERN = re.compile(r"(?i)(bearer\s+)[^\s\"']+")


def _safe_snippet(text: str) -> str:
    """A short, token-free excerpt of a response body for error messages and logs."""
    return _SECRET_PATTERN.sub(r"\1***", text[:MAX_ERROR_BODY])


class LaporHttp:
    """The one HTTP wrapper for LAPOR!: base URL, token, default timeout, our error types.

    ``timeout`` bounds each request as a whole, from connecting to the last byte of the answer. httpx
    applies its timeout to each connect, read and write step, so an answer trickling in a few bytes at a
    time would never time out; the outbox's claim lease (a multiple of this timeout) assumes it does.
    Running out of time counts as a read timeout: for a request that changes something, its outcome is
    unknown.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        api: LaporApiConfig,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "jaring-forwarder/0.1"}
        if token:
            headers[api.auth_header] = f"{api.auth_scheme} {token}".strip()
        self._deadline = timeout
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its whole answer within the deadline, or raise ``httpx.ReadTimeout``.

        The exchange runs in a helper thread so the caller can stop waiting at the deadline whatever the
        server does; the helper then drops the answer at its next piece (or its next per-step timeout).
        """
        outcome: list[httpx.Response | Exception] = []
        gave_up = threading.Event()

        def exchange() -> None:
            try:
                response = self._client.send(request, stream=True)
                try:
                    raw = bytearray()
                    for piece in response.iter_raw():
                        if gave_up.is_set():
                            return
                        raw.extend(piece)
                finally:
                    response.close()
                outcome.append(httpx.Response(response.status_code, headers=response.headers,
                                              content=bytes(raw), request=request))
            except Exception as exc:  # re-raised in the caller, which turns it into our error types
                outcome.append(exc)

        helper = threading.Thread(target=exchange, name="lapor-http", daemon=True)
        helper.start()
        helper.join(self._deadline)
        if not outcome:
            gave_up.set()
            raise httpx.ReadTimeout(f"no complete answer within {self._deadline:g} s", request=request)
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        mutating: bool,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        not_found_ok: bool = False,
    ) -> dict[str, Any] | None:
        """Send one request; returns the JSON body (``None`` for an allowed 404)."""
        try:
            request = self._client.build_request(method, path, json=json_body, params=params, headers=headers)
            response = self._exchange(request)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise LaporPermanentError(f"Alamat API LAPOR! tidak dapat dipakai: {exc.__class__.__name__}") from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise LaporTransientError(f"LAPOR! tidak dapat dihubungi: {exc.__class__.__name__}") from None
        except httpx.TimeoutException as exc:
            message = f"LAPOR! tidak menjawab tepat waktu: {exc.__class__.__name__}"
            raise (LaporUnknownOutcome if mutating else LaporTransientError)(message) from None
        except httpx.HTTPError as exc:
            message = f"Koneksi ke LAPOR! terputus: {exc.__class__.__name__}"
            raise (LaporUnknownOutcome if mutating else LaporTransientError)(message) from None
        status = response.status_code
        if status == 404 and not_found_ok:
            return None
        if status in (408, 425, 429):
            raise LaporTransientError(f"LAPOR! meminta pengiriman diperlambat ({status})", http_status=status)
        if status == 409 and mutating:
            raise LaporUnknownOutcome("LAPOR! melaporkan konflik (409): mungkin sudah terkirim", http_status=status)
        if status >= 500:
            message = f"Galat server LAPOR! ({status}): {_safe_snippet(response.text)}"
            raise (LaporUnknownOutcome if mutating else LaporTransientError)(message, http_status=status)
        if status in (401, 403):
            raise LaporPermanentError(f"Token LAPOR! ditolak ({status})", http_status=status)
        if status >= 400:
            raise LaporPermanentError(
                f"LAPOR! menolak permintaan ({status}): {_safe_snippet(response.text)}", http_status=status
            )
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            message = f"Jawaban LAPOR! ({status}) bukan JSON"
            raise (LaporUnknownOutcome if mutating else LaporTransientError)(message, http_status=status) from None
        if not isinstance(body, dict):
            raise (LaporUnknownOutcome if mutating else LaporTransientError)(
                "Jawaban LAPOR! berbentuk JSON yang tidak dikenal", http_status=status
            )
        return body


def _attachment_payload(attachments: list[Any]) -> list[dict[str, Any]]:
    """Small files inline (base64), as LAPOR! expects; anything else is passed as a link."""
    result = []
    for item in attachments or []:
        if not isinstance(item, dict):
            continue
        entry: dict[str, Any] = {"nama": str(item.get("name") or item.get("url") or "lampiran")[:200]}
        path = item.get("path")
        if path and Path(path).is_file() and Path(path).stat().st_size <= MAX_ATTACHMENT_BYTES:
            entry["tipe"] = str(item.get("content_type") or "application/octet-stream")
            entry["data"] = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        elif item.get("url"):
            entry["url"] = str(item["url"])[:1000]
        else:
            continue
        result.append(entry)
    return result


def location_line(complaint: Complaint) -> str:
    """The complaint's place in one line, kelurahan and kecamatan added when not already named."""
    text = complaint.location_text or ""
    parts = [text] if text else []
    for prefix, value in (("Kel.", complaint.kelurahan), ("Kec.", complaint.kecamatan)):
        if value and value.lower() not in text.lower():
            parts.append(f"{prefix} {value}")
    return ", ".join(parts)


def complaint_fields(complaint: Complaint, *, idempotency_key: str) -> dict[str, Any]:
    """Our canonical complaint fields, before the configured renaming to LAPOR!'s names."""
    location = location_line(complaint)
    return {
        "title": complaint.title,
        "body": complaint.body,
        "incident_date": complaint.incident_date.date().isoformat() if complaint.incident_date else None,
        "location": location,
        "category": complaint.category,
        "instansi": complaint.instansi,
        "anonymous": bool(complaint.anonymous),
        "confidential": bool(complaint.confidential),
        "attachments": _attachment_payload(list(complaint.attachments or [])),
        "external_ref": idempotency_key,
    }


def map_fields(fields: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Rename our fields to LAPOR!'s (fields without a mapping are not sent)."""
    return {mapping[name]: value for name, value in fields.items() if name in mapping and value is not None}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class APISender:
    """Delivers through the LAPOR! HTTP API described in docs/lapor-api.md."""

    name = "api"
    manual = False

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        api: LaporApiConfig | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.api = api or load_forward_config(settings.forward_policy_file).lapor_api
        token = settings.lapor_api_token.get_secret_value() if settings.lapor_api_token else None
        self.http = LaporHttp(
            base_url=settings.lapor_api_base,
            token=token,
            api=self.api,
            timeout=settings.http_timeout_seconds,
            transport=transport,
        )

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.http.close()

    def _submission(self, body: dict[str, Any]) -> Submission:
        tracking = body.get(self.api.response_tracking_field)
        if tracking in (None, ""):
            raise LaporUnknownOutcome("Jawaban LAPOR! tanpa nomor pelacakan")
        status = body.get(self.api.response_status_field)
        return Submission(tracking_id=str(tracking), status=str(status) if status else None, raw=body)

    def categories(self) -> list[dict[str, Any]]:
        """LAPOR!'s category list."""
        body = self.http.request("GET", self.api.categories_path, mutating=False) or {}
        items = body.get(self.api.response_list_field) or []
        return [item for item in items if isinstance(item, dict)]

    def submit(self, complaint: Complaint, *, idempotency_key: str) -> Submission:
        """POST the complaint with our idempotency key; returns LAPOR!'s tracking id."""
        payload = map_fields(complaint_fields(complaint, idempotency_key=idempotency_key), self.api.fields)
        body = self.http.request(
            "POST",
            self.api.submit_path,
            mutating=True,
            json_body=payload,
            headers={self.api.idempotency_header: idempotency_key} if self.api.idempotency_header else None,
        )
        return self._submission(body or {})

    def find(self, *, idempotency_key: str) -> Submission | None:
        """Look up the complaint LAPOR! holds under our external reference."""
        body = self.http.request(
            "GET", self.api.lookup_path, mutating=False, params={self.api.lookup_param: idempotency_key}
        )
        items = (body or {}).get(self.api.response_list_field) or []
        items = [item for item in items if isinstance(item, dict)]
        if not items:
            return None
        return self._submission(items[0])

    def status(self, *, tracking_id: str) -> RemoteStatus | None:
        """The current status of one complaint in LAPOR!."""
        path = self.api.status_path.format(tracking_id=tracking_id)
        body = self.http.request("GET", path, mutating=False, not_found_ok=True)
        if body is None:
            return None
        status = body.get(self.api.response_status_field)
        if not status:
            raise LaporTransientError("Jawaban status LAPOR! tanpa status")
        history = tuple(
            (str(entry.get("status")), _parse_time(entry.get("at")))
            for entry in body.get("history") or []
            if isinstance(entry, dict) and entry.get("status")
        )
        return RemoteStatus(
            tracking_id=tracking_id,
            status=str(status),
            updated_at=_parse_time(body.get("updated_at")),
            history=history,
            raw=body,
        )


class ManualSender:
    """An admin types complaints into LAPOR! from a copy-ready page and pastes the tracking id back.

    It never talks to LAPOR!: the outbox parks its items in ``awaiting_manual`` and statuses come
    from the admin (``pipelines.status_sync.record_manual_status``).
    """

    name = "manual"
    manual = True

    def submit(self, complaint: Complaint, *, idempotency_key: str) -> Submission:
        """Not possible without a person; the outbox never calls this for the manual sender."""
        raise LaporTransientError("pengirim manual: menunggu admin memasukkan aduan ke LAPOR!")

    def find(self, *, idempotency_key: str) -> Submission | None:
        """Unknown to us until the admin records it."""
        return None

    def status(self, *, tracking_id: str) -> RemoteStatus | None:
        """Statuses come from the admin, not from a lookup."""
        return None

    def close(self) -> None:
        """Nothing to release."""


def make_sender(settings: Settings | None = None, *, kind: str | None = None) -> APISender | ManualSender:
    """The sender this deployment uses (``settings.lapor_sender``), or ``kind`` if given."""
    settings = settings or get_settings()
    kind = kind or settings.lapor_sender
    if kind == "manual":
        return ManualSender()
    return APISender(settings=settings)


def copy_ready_fields(complaint: Complaint) -> list[tuple[str, str]]:
    """The complaint as LAPOR!'s web form asks for it, label by label, for the manual-entry page."""
    return [
        ("Judul Laporan", complaint.title or ""),
        ("Isi Laporan", complaint.body or ""),
        ("Tanggal Kejadian", complaint.incident_date.date().isoformat() if complaint.incident_date else ""),
        ("Lokasi Kejadian", location_line(complaint)),
        ("Kategori", complaint.category or ""),
        ("Instansi Tujuan", complaint.instansi or complaint.opd or ""),
        ("Anonim", "Ya" if complaint.anonymous else "Tidak"),
        ("Rahasia", "Ya" if complaint.confidential else "Tidak"),
    ]


def public_link(tracking_id: str, settings: Settings | None = None) -> str:
    """The public LAPOR! page of a complaint."""
    settings = settings or get_settings()
    return f"{settings.lapor_public_url.rstrip('/')}/{tracking_id}"
