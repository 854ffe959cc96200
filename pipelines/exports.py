"""CSV and XLSX exports of complaints for a period, with personal data masked.

Phone numbers, NIK (16 digits) and e-mail addresses are masked in every free-text cell
(``jaring.privacy.mask_pii``). Cells that a spreadsheet would read as a formula (``=``, ``+``,
``-``, ``@``, tab, CR) are prefixed with an apostrophe, so a hostile post cannot run in Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring.privacy import mask_pii
from pipelines.models import Complaint, Post

COLUMNS = [
    ("id", "ID aduan"), ("created_at", "Dibuat (UTC)"), ("title", "Judul"), ("body", "Isi"),
    ("category", "Kategori"), ("topic", "Topik"), ("opd", "OPD"), ("instansi", "Instansi LAPOR!"),
    ("kecamatan", "Kecamatan"), ("kelurahan", "Kelurahan"), ("location_text", "Lokasi"),
    ("platform", "Kanal"), ("source_url", "Tautan sumber"), ("auto", "Otomatis"),
    ("tracking_id", "ID pelacakan LAPOR!"), ("lapor_status", "Status LAPOR!"),
    ("forwarded_at", "Diteruskan (UTC)"), ("closed_at", "Ditutup (UTC)"), ("overdue", "Terlambat"),
]
FREE_TEXT = {"title", "body", "location_text", "source_url", "category", "opd", "instansi"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MAX_CELL = 32_000  # Excel's cell limit is 32,767 characters


def _cell(key: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "ya" if value else "tidak"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if key in FREE_TEXT:
        text = mask_pii(text)
    text = text[:MAX_CELL]
    if text.startswith(FORMULA_PREFIXES):
        text = "'" + text
    return text


def complaint_rows(*, session: Session, start: date, end: date) -> Iterator[list[Any]]:
    """Masked rows (in COLUMNS order) of complaints created from ``start`` to ``end`` inclusive."""
    lo = datetime.combine(start, time.min, UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, UTC)
    query = (
        sa.select(Complaint, Post.platform, Post.url)
        .outerjoin(Post, Post.id == Complaint.post_id)
        .where(Complaint.created_at >= lo, Complaint.created_at < hi)
        .order_by(Complaint.created_at, Complaint.id)
        .execution_options(yield_per=500)
    )
    for complaint, platform, url in session.execute(query):
        values = {key: getattr(complaint, key, None) for key, _ in COLUMNS}
        values.update(platform=platform, source_url=url)
        yield [_cell(key, values[key]) for key, _ in COLUMNS]


def export_csv(*, session: Session, start: date, end: date) -> str:
    """The period's complaints as CSV text (UTF-8 with a header row in Bahasa Indonesia)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([title for _, title in COLUMNS])
    writer.writerows(complaint_rows(session=session, start=start, end=end))
    return buffer.getvalue()


def export_xlsx(*, session: Session, start: date, end: date) -> bytes:
    """The period's complaints as an XLSX workbook."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Aduan")
    sheet.append([title for _, title in COLUMNS])
    for row in complaint_rows(session=session, start=start, end=end):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
