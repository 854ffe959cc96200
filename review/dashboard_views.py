"""Dashboard (all roles) and complaint exports (staff)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from pipelines import audit, dashboard, exports
from pipelines.models import User
from review import charts
from review.auth import ALL_ROLES, STAFF_ROLES, get_db, require_role
from review.templating import PLATFORM_NAMES, TOPIC_NAMES, render

router = APIRouter()
DIMENSION_NAMES = {"opd": "OPD", "topic": "Topik", "platform": "Kanal", "kecamatan": "Kecamatan"}
MAX_PERIOD_DAYS = 731


def _period(request: Request, default_days: int = 30) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    try:
        end = date.fromisoformat(request.query_params.get("sampai") or "")
    except ValueError:
        end = today
    try:
        start = date.fromisoformat(request.query_params.get("dari") or "")
    except ValueError:
        start = end - timedelta(days=default_days - 1)
    if start > end:
        start, end = end, start
    if (end - start).days > MAX_PERIOD_DAYS:
        start = end - timedelta(days=MAX_PERIOD_DAYS)
    return start, end


def _label(dim: str, label: str) -> str:
    if dim == "topic":
        return TOPIC_NAMES.get(label, label)
    if dim == "platform":
        return PLATFORM_NAMES.get(label, label)
    return label


@router.get("/dasbor")
def dashboard_page(request: Request, _user: User = Depends(require_role(*ALL_ROLES)),
                   db: Session = Depends(get_db)) -> Response:
    """Complaints per OPD, topic, channel and kecamatan; the funnel; median handling times."""
    start, end = _period(request)
    dim = request.query_params.get("dimensi", "opd")
    dim = dim if dim in dashboard.DIMENSIONS else "opd"
    settings = request.app.state.settings
    data = dashboard.build(session=db, start=start, end=end,
                           followed_up=dashboard.followed_up_predicate(settings.forward_policy_file))
    totals = {d: charts.bar_chart([(_label(d, k), n) for k, n in data.totals[d]], title=f"Aduan per {DIMENSION_NAMES[d]}")
              for d in dashboard.DIMENSIONS}
    series = {_label(dim, k): v for k, v in data.series[dim].items()}
    return render(request, "dashboard/index.html", {
        "data": data, "start": start, "end": end, "dim": dim, "dimension_names": DIMENSION_NAMES,
        "totals": totals, "funnel": charts.funnel_chart(data.funnel.steps(), title="Corong penanganan"),
        "over_time": charts.stacked_columns(data.buckets, series,
                                            title=f"Aduan per {DIMENSION_NAMES[dim]} dari waktu ke waktu"),
        "medians": [(label, dashboard.human_duration(sec), n) for label, sec, n in data.medians],
    })


@router.get("/ekspor")
def export_page(request: Request, user: User = Depends(require_role(*STAFF_ROLES)),
                db: Session = Depends(get_db)) -> Response:
    """The export form; with ``format=csv|xlsx`` the file itself (personal data masked)."""
    fmt = request.query_params.get("format")
    start, end = _period(request)
    if fmt not in ("csv", "xlsx"):
        return render(request, "dashboard/export.html", {"start": start, "end": end})
    audit.record(session=db, actor=user.username, action="complaints.export", object_type="export",
                 object_id=fmt, details={"from": start.isoformat(), "to": end.isoformat()})
    db.commit()
    name = f"aduan_{start:%Y%m%d}_{end:%Y%m%d}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        body = exports.export_csv(session=db, start=start, end=end).encode("utf-8-sig")
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(exports.export_xlsx(session=db, start=start, end=end),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", headers=headers)
