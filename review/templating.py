"""The Jinja2 environment every router renders with (autoescape always on).

Other routers render with ``from review.templating import render`` and extend ``base.html``
(blocks ``title`` and ``content``); the current user, ``csrf_input()`` and the navigation are
in every template's context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.responses import HTMLResponse

from pipelines.complaints import BODY_MAX, BODY_MIN, TITLE_MAX, TITLE_MIN
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
ROLE_NAMES = {"viewer": "Pimpinan (dasbor)", "reviewer": "Peninjau (humas)", "analyst": "Analis",
              "admin": "Administrator"}
# Every action code passed to audit.record() (tests/review/test_web.py checks none is missing).
ACTION_NAMES = {
    "auth.login": "Masuk", "auth.login_failed": "Gagal masuk", "auth.logout": "Keluar",
    "auth.login_locked": "Masuk diblokir (terlalu banyak percobaan)",
    "auto_forward.forwarded": "Diteruskan otomatis ke LAPOR!", "auto_forward.skipped": "Tidak diteruskan otomatis",
    "complaint.create": "Aduan dibuat", "complaint.status": "Status LAPOR! dicatat",
    "complaint.replied": "Warga dibalas", "complaint.reply_failed": "Balasan ke warga gagal",
    "complaint.reply_unknown": "Balasan ke warga belum pasti", "complaints.export": "Data aduan diekspor",
    "harvest.source_stopped": "Sumber dihentikan", "harvest.source_failing": "Sumber bermasalah",
    "source.enabled": "Sumber diaktifkan", "source.disabled": "Sumber dinonaktifkan",
    "outbox.enqueue": "Masuk antrean kirim LAPOR!", "outbox.sent": "Terkirim ke LAPOR!",
    "outbox.dead": "Pengiriman gagal", "outbox.retry": "Diperbaiki dan dikirim ulang",
    "outbox.duplicate_detected": "Laporan ganda terdeteksi di LAPOR!",
    "outbox.manual_to_api": "Dipindah dari input manual ke pengirim API",
    "post.confirm": "Dikonfirmasi sebagai keluhan", "post.compose": "Aduan disusun",
    "post.reject.not_complaint": "Ditolak: bukan keluhan", "post.reject.spam": "Ditolak: spam",
    "post.reject.duplicate": "Ditolak: duplikat",
    "user.create": "Pengguna dibuat", "user.update": "Pengguna diubah",
}
FIELD_NAMES = {"title": "judul", "body": "isi", "category": "kategori", "instansi": "instansi tujuan", "opd": "OPD",
               "location_text": "lokasi", "kecamatan": "kecamatan", "kelurahan": "kelurahan", "anonymous": "anonim",
               "confidential": "rahasia"}
HEAD_NAMES = {"relevance": "relevansi", "topic": "topik", "agency": "OPD"}
VIA_NAMES = {"sender": "pengirim API", "manual": "input manual", "sync": "sinkronisasi", "api": "pengirim API"}


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


def _topic(code: Any) -> str:
    return "semua" if code in ("*", None, "") else TOPIC_NAMES.get(str(code), str(code))


def _agency(code: Any) -> str:
    return "semua" if code in ("*", None, "") else str(code)


# The auto-forward policy's reasons (pipelines.forward_policy.decide), in Bahasa Indonesia.
_POLICY_REASONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"kill switch"), lambda m: "penerusan otomatis sedang dimatikan"),
    (re.compile(r"relevance is '?([^']*)'?, not keluhan"),
     lambda m: f"relevansinya {RELEVANCE_NAMES.get(m[1], m[1])}, bukan keluhan"),
    (re.compile(r"no rule for topic=(\S+) agency=(\S+)"),
     lambda m: f"tidak ada aturan untuk topik {_topic(m[1])}, OPD {_agency(m[2])}"),
    (re.compile(r"rule for topic=(\S+) agency=(\S+) requires a reviewer"),
     lambda m: f"aturan untuk topik {_topic(m[1])}, OPD {_agency(m[2])} mewajibkan tinjauan humas"),
    (re.compile(r"(relevance|topic|agency) score (\S+) below (\S+)"),
     lambda m: f"skor {HEAD_NAMES[m[1]]} {_score(m[2])} di bawah batas {_score(m[3])}"),
    (re.compile(r"rule daily cap (\d+) reached"), lambda m: f"batas harian aturan ({m[1]}) sudah tercapai"),
    (re.compile(r"daily cap (\d+) reached"), lambda m: f"batas harian ({m[1]}) sudah tercapai"),
    (re.compile(r"near-duplicate of already forwarded complaint (\d+)"),
     lambda m: f"mirip aduan #{m[1]} yang sudah diteruskan"),
]


def _score(text: str) -> str:
    try:
        return percent(float(text))
    except ValueError:
        return text


def policy_reason(reason: Any) -> str:
    """The auto-forward policy's reason in Bahasa Indonesia (an unknown reason as it is)."""
    text = str(reason or "")
    for pattern, say in _POLICY_REASONS:
        match = pattern.fullmatch(text)
        if match:
            return say(match)
    return text


def audit_summary(action: str, details: dict[str, Any] | None) -> str:
    """A short Bahasa Indonesia reading of an audit entry's details ('' when there is nothing to say)."""
    d = details if isinstance(details, dict) else {}
    parts: list[str] = []
    if action.startswith("auto_forward."):
        if d.get("reason"):
            parts.append(f"Alasan: {policy_reason(d['reason'])}")
        if d.get("complaint_id"):
            parts.append(f"aduan #{d['complaint_id']}")
        if d.get("model_version"):
            parts.append(f"model {d['model_version']}")
    elif action == "post.confirm":
        parts.append(f"Topik {_topic(d.get('topic'))}, OPD {_agency(d.get('agency'))}")
        before = d.get("corrected_from")
        if isinstance(before, dict):
            fixed = [f"topik {_topic(before.get('topic'))}" if before.get("topic") != d.get("topic") else "",
                     f"OPD {_agency(before.get('agency'))}" if before.get("agency") != d.get("agency") else ""]
            parts.append("dikoreksi dari " + ", ".join(p for p in fixed if p))
    elif action.startswith("post.reject.") and d.get("duplicate_of_id"):
        parts.append(f"Duplikat dari kiriman #{d['duplicate_of_id']}")
    elif action == "post.compose" and d.get("complaint_id"):
        parts.append(f"Aduan #{d['complaint_id']}")
    elif action == "complaint.create":
        parts.append(f"Instansi tujuan: {d.get('instansi') or '—'}")
        if d.get("group_members"):
            parts.append(f"{len(d['group_members'])} kiriman serupa disertakan")
    elif action == "outbox.enqueue":
        parts.append(f"Antrean #{d.get('outbox_id')}, lewat {VIA_NAMES.get(d.get('sender', ''), d.get('sender'))}")
    elif action == "outbox.sent":
        parts.append(f"Nomor pelacakan {d.get('tracking_id')} ({VIA_NAMES.get(d.get('via', ''), d.get('via'))})")
    elif action == "outbox.dead":
        parts.append(f"{d.get('reason') or 'alasan tidak diketahui'} ({d.get('attempts', '?')} percobaan)")
    elif action == "outbox.retry":
        changed = [FIELD_NAMES.get(f, f) for f in d.get("changed_fields") or []]
        parts.append("Diubah: " + ", ".join(changed) if changed else "Tanpa perubahan isian")
    elif action == "outbox.duplicate_detected":
        parts.append(f"Nomor yang dipakai {d.get('kept')}, nomor tambahan {d.get('extra')}")
    elif action == "outbox.manual_to_api":
        parts.append(f"{d.get('count', 0)} aduan")
    elif action == "complaint.status":
        parts.append(f"Status: {d.get('status')}" + (" (dicatat manual)" if d.get("source") == "manual" else ""))
    elif action == "complaint.replied":
        parts.append(f"Di {PLATFORM_NAMES.get(d.get('platform', ''), d.get('platform'))}")
    elif action in ("complaint.reply_failed", "complaint.reply_unknown", "harvest.source_stopped",
                    "harvest.source_failing"):
        if d.get("error") or d.get("reason"):
            parts.append(str(d.get("error") or d.get("reason")))
    elif action.startswith("auth.") and d.get("client"):
        parts.append(f"Dari alamat {d['client']}")
    elif action == "user.create":
        parts.append(f"{d.get('username')}, peran {ROLE_NAMES.get(d.get('role', ''), d.get('role'))}")
    elif action == "user.update":
        role = d.get("role")
        if isinstance(role, list) and len(role) == 2:
            parts.append(f"peran {ROLE_NAMES.get(role[0], role[0])} → {ROLE_NAMES.get(role[1], role[1])}")
        if "active" in d:
            parts.append("diaktifkan" if d["active"] else "dinonaktifkan")
        if d.get("password"):
            parts.append("kata sandi diganti")
    elif action == "complaints.export":
        parts.append(f"Periode {str(d.get('from', ''))[:10]} s.d. {str(d.get('to', ''))[:10]}")
    return " · ".join(p for p in parts if p)


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
    env.globals.update(ROLE_NAMES=ROLE_NAMES, ACTION_NAMES=ACTION_NAMES, audit_summary=audit_summary)
    env.globals.update(TOPIC_NAMES=TOPIC_NAMES, RELEVANCE_NAMES=RELEVANCE_NAMES, STATUS_NAMES=STATUS_NAMES,
                       PLATFORM_NAMES=PLATFORM_NAMES, REJECT_NAMES=REJECT_NAMES,
                       # The composer's limits, also on the fix-and-retry form (one definition for both).
                       TITLE_MIN=TITLE_MIN, TITLE_MAX=TITLE_MAX, BODY_MIN=BODY_MIN, BODY_MAX=BODY_MAX)
    return env


templates = Jinja2Templates(env=_environment(), context_processors=[_context])


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """Render a template with the common context."""
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code)
