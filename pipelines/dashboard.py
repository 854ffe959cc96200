"""Figures for leaders: complaints per OPD, topic, platform and kecamatan over time, the handling funnel,
and median times between the steps (the SOP asks for measurable handling time).

Counts are SQL aggregates; time bucketing and medians are done in Python over one period's rows
(portable across SQLite and PostgreSQL, and a city's period is thousands of rows, not millions).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipelines.models import Complaint, ComplaintStatusEvent, Post, PostStatus, Review
from pipelines.models import aware as _utc

DIMENSIONS = ("opd", "topic", "platform", "kecamatan")
# Fallback when no forwarding config maps LAPOR! statuses to stages: statuses that only say the report
# arrived or was routed; anything else counts as follow-up by the agency.
INITIAL_STATUSES = frozenset({"", "baru", "diterima", "menunggu", "belum terverifikasi", "terverifikasi",
                              "terdisposisi", "menunggu kelengkapan informasi", "pending", "received", "submitted",
                              "sent", "terkirim"})
FOLLOWED_UP_STAGES = frozenset({"responded", "closed"})
MEDIAN_SAMPLE = 5_000


def followed_up_predicate(forward_policy_file: Path | str | None = None) -> Callable[[str], bool]:
    """Whether a LAPOR! status text means the agency followed up (stages from the forwarding config)."""
    try:
        from pipelines.forward_policy import load_forward_config

        config = load_forward_config(forward_policy_file)
    except Exception:  # noqa: BLE001 - no or broken forwarding config: fall back to the built-in list
        config = None
    if config is not None and config.lapor_api.statuses:
        stage_of = config.lapor_api.stage_of
        return lambda status: stage_of(status) in FOLLOWED_UP_STAGES
    return lambda status: (status or "").strip().lower() not in INITIAL_STATUSES
UNKNOWN = "(tidak diketahui)"


@dataclass
class Funnel:
    """How many posts of the period reached each step."""

    captured: int = 0
    complaint: int = 0  # predicted (or confirmed) to be a complaint
    reviewed: int = 0  # decided by a person or by the auto-forward policy
    forwarded: int = 0  # got a LAPOR! tracking id
    followed_up: int = 0  # the agency acted on it in LAPOR!

    def steps(self) -> list[tuple[str, int]]:
        """(label, count) in funnel order, labels in Bahasa Indonesia."""
        return [("Tertangkap", self.captured), ("Keluhan", self.complaint), ("Ditinjau", self.reviewed),
                ("Diteruskan", self.forwarded), ("Ditindaklanjuti", self.followed_up)]


@dataclass
class DashboardData:
    """Everything the dashboard page draws for one period."""

    start: date
    end: date  # inclusive
    bucket_days: int
    buckets: list[date]
    totals: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # dimension -> [(label, n)]
    series: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # dimension -> label -> per bucket
    complaints_total: int = 0
    funnel: Funnel = field(default_factory=Funnel)
    medians: list[tuple[str, float | None, int]] = field(default_factory=list)  # (step, seconds, n)
    overdue: int = 0


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, UTC), datetime.combine(end + timedelta(days=1), time.min, UTC)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def build(
    *, session: Session, start: date, end: date, top: int = 6, followed_up: Callable[[str], bool] | None = None
) -> DashboardData:
    """Compute the dashboard for ``start``..``end`` (inclusive, UTC days)."""
    if end < start:
        start, end = end, start
    lo, hi = _bounds(start, end)
    days = (end - start).days + 1
    bucket_days = 1 if days <= 31 else 7 if days <= 190 else 30
    buckets = [start + timedelta(days=i) for i in range(0, days, bucket_days)]
    data = DashboardData(start=start, end=end, bucket_days=bucket_days, buckets=buckets)

    rows = session.execute(
        sa.select(Complaint.id, Complaint.created_at, Complaint.opd, Complaint.topic, Complaint.kecamatan,
                  Post.platform, Complaint.overdue)
        .outerjoin(Post, Post.id == Complaint.post_id)
        .where(Complaint.created_at >= lo, Complaint.created_at < hi)
    ).all()
    data.complaints_total = len(rows)
    data.overdue = sum(1 for r in rows if r.overdue)
    per_dim: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    per_bucket: dict[str, dict[str, Counter[int]]] = {d: defaultdict(Counter) for d in DIMENSIONS}
    for row in rows:
        created = _utc(row.created_at)
        index = min(((created.date() - start).days if created else 0) // bucket_days, len(buckets) - 1)
        for dim, value in (("opd", row.opd), ("topic", row.topic), ("platform", row.platform),
                           ("kecamatan", row.kecamatan)):
            label = value or UNKNOWN
            per_dim[dim][label] += 1
            per_bucket[dim][label][index] += 1
    for dim in DIMENSIONS:
        data.totals[dim] = per_dim[dim].most_common()
        kept = [label for label, _ in per_dim[dim].most_common(top)]
        series = {label: [per_bucket[dim][label][i] for i in range(len(buckets))] for label in kept}
        rest = [sum(per_bucket[dim][label][i] for label in per_dim[dim] if label not in kept) for i in range(len(buckets))]
        if any(rest):
            series["lainnya"] = rest
        data.series[dim] = series

    data.funnel, data.medians = _funnel_and_medians(session, lo, hi, followed_up or followed_up_predicate())
    return data


def _funnel_and_medians(
    session: Session, lo: datetime, hi: datetime, followed_up: Callable[[str], bool]
) -> tuple[Funnel, list[tuple[str, float | None, int]]]:
    # The period is on the post's own time (indexed); it differs from capture time by the harvest lag only.
    in_period = sa.and_(Post.created_at >= lo, Post.created_at < hi)
    decided = [PostStatus.CONFIRMED.value, PostStatus.REJECTED.value, PostStatus.FORWARDED.value]
    is_complaint = sa.or_(Post.relevance == "keluhan",
                          Post.status.in_([PostStatus.CONFIRMED.value, PostStatus.FORWARDED.value]))
    counts = session.execute(
        sa.select(sa.func.count(),
                  sa.func.sum(sa.case((is_complaint, 1), else_=0)),
                  sa.func.sum(sa.case((Post.status.in_(decided), 1), else_=0)))
        .select_from(Post).where(in_period)
    ).one()
    funnel = Funnel(captured=int(counts[0] or 0), complaint=int(counts[1] or 0), reviewed=int(counts[2] or 0))

    # Times between steps come from the period's decided posts; above MEDIAN_SAMPLE of them, from an
    # evenly spread sample (by id), which moves a median very little and keeps a year's view fast.
    first_review = (sa.select(sa.func.min(Review.created_at)).where(Review.post_id == Post.id)
                    .correlate(Post).scalar_subquery())
    has_review = sa.exists().where(Review.post_id == Post.id)
    stride = max(1, -(-funnel.reviewed // MEDIAN_SAMPLE))
    query = (
        sa.select(Post.id, Post.created_at, Post.harvested_at, first_review.label("at"), Complaint.id.label("cid"),
                  Complaint.created_at.label("complained_at"), Complaint.forwarded_at, Complaint.tracking_id,
                  Complaint.closed_at)
        .outerjoin(Complaint, Complaint.post_id == Post.id)
        .where(in_period, Post.status.in_(decided), sa.or_(has_review, Complaint.id.is_not(None)))
    )
    if stride > 1:
        query = query.where(Post.id % stride == 0)
    posts = session.execute(query).all()
    complaint_ids = [r.cid for r in posts if r.cid is not None and r.forwarded_at is not None]
    follow_ups: dict[int, datetime] = {}
    for chunk_start in range(0, len(complaint_ids), 500):
        chunk = complaint_ids[chunk_start:chunk_start + 500]
        events = session.execute(
            sa.select(ComplaintStatusEvent.complaint_id, ComplaintStatusEvent.status, ComplaintStatusEvent.changed_at)
            .where(ComplaintStatusEvent.complaint_id.in_(chunk)).order_by(ComplaintStatusEvent.changed_at))
        for cid, status, changed_at in events:
            if cid not in follow_ups and followed_up(status or ""):
                follow_ups[cid] = _utc(changed_at)  # type: ignore[assignment]

    posted_to_captured: list[float] = []
    captured_to_reviewed: list[float] = []
    reviewed_to_forwarded: list[float] = []
    forwarded_to_followed: list[float] = []
    captured_to_forwarded: list[float] = []
    for r in posts:
        created, harvested = _utc(r.created_at), _utc(r.harvested_at)
        reviewed = _utc(r.at) or _utc(r.complained_at)
        forwarded = _utc(r.forwarded_at) if r.tracking_id or r.forwarded_at else None
        followed = follow_ups.get(r.cid) if r.cid is not None else None
        if followed is None and r.closed_at is not None and forwarded is not None:
            followed = _utc(r.closed_at)
        if forwarded is not None:
            funnel.forwarded += 1
        if followed is not None:
            funnel.followed_up += 1
        if created and harvested and harvested >= created:
            posted_to_captured.append((harvested - created).total_seconds())
        if harvested and reviewed and reviewed >= harvested:
            captured_to_reviewed.append((reviewed - harvested).total_seconds())
        if reviewed and forwarded and forwarded >= reviewed:
            reviewed_to_forwarded.append((forwarded - reviewed).total_seconds())
        if forwarded and followed and followed >= forwarded:
            forwarded_to_followed.append((followed - forwarded).total_seconds())
        if harvested and forwarded and forwarded >= harvested:
            captured_to_forwarded.append((forwarded - harvested).total_seconds())
    medians = [
        ("Diunggah → tertangkap", _median(posted_to_captured), len(posted_to_captured)),
        ("Tertangkap → ditinjau", _median(captured_to_reviewed), len(captured_to_reviewed)),
        ("Ditinjau → diteruskan", _median(reviewed_to_forwarded), len(reviewed_to_forwarded)),
        ("Diteruskan → ditindaklanjuti", _median(forwarded_to_followed), len(forwarded_to_followed)),
        ("Tertangkap → diteruskan (total)", _median(captured_to_forwarded), len(captured_to_forwarded)),
    ]
    return funnel, medians


def human_duration(seconds: float | None) -> str:
    """A duration in Bahasa Indonesia: '3 hari 4 jam', '25 menit'."""
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} detik"
    if minutes < 60:
        return f"{minutes} menit"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} jam {minutes} menit" if minutes else f"{hours} jam"
    days, hours = divmod(hours, 24)
    return f"{days} hari {hours} jam" if hours else f"{days} hari"
