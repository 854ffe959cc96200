"""What a reviewer does to a post: confirm, reject, and turn it into a formal complaint.

Every function takes keyword arguments and an explicit session, writes the audit log, and never
commits: the caller (a web handler, a test) owns the transaction. Concurrency is handled with
optimistic status checks (``UPDATE ... WHERE status IN (...)``) and the unique ``complaints.post_id``:
two reviewers acting on the same post at once cannot both change it, nor both forward it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from classifier.city import City
from jaring.settings import Settings
from pipelines import audit
from pipelines.complaints import BODY_MAX, BODY_MIN, TITLE_MAX, TITLE_MIN, is_web_link
from pipelines.models import Complaint, Post, PostStatus, Review, User, utcnow

REJECT_REASONS = ("not_complaint", "spam", "duplicate")
OPEN_STATUSES = (PostStatus.NEW.value, PostStatus.QUEUED.value)
COMPOSABLE_STATUSES = (PostStatus.NEW.value, PostStatus.QUEUED.value, PostStatus.CONFIRMED.value)
MAX_BULK = 200


class ActionError(Exception):
    """A review action that cannot be done; the message is shown to the reviewer (Bahasa Indonesia)."""


class ActionConflict(ActionError):
    """Someone else changed the post first (optimistic check failed, or a complaint already exists)."""


@dataclass
class BulkResult:
    """Outcome of a bulk action: ids done, and ids skipped with the reason."""

    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def _claim(session: Session, *, post_id: int, from_statuses: Sequence[str], values: dict[str, Any]) -> None:
    """Change a post only if it is still in one of ``from_statuses`` (the optimistic check)."""
    result = session.execute(
        sa.update(Post)
        .where(Post.id == post_id, Post.status.in_(from_statuses))
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalar(sa.select(Post.status).where(Post.id == post_id))
        if current is None:
            raise ActionError(f"Kiriman #{post_id} tidak ditemukan.")
        raise ActionConflict(f"Kiriman #{post_id} sudah ditangani (status: {current}).")
    post = session.get(Post, post_id)
    if post is not None:
        session.refresh(post)


def confirm(
    *,
    session: Session,
    post_id: int,
    user: User,
    topic: str | None = None,
    agency: str | None = None,
    note: str = "",
    city: City | None = None,
) -> Review:
    """Confirm a post as a complaint, optionally correcting its topic and agency (OPD function)."""
    _check_labels(topic=topic, agency=agency, city=city)
    before = session.execute(sa.select(Post.topic, Post.agency).where(Post.id == post_id)).first()
    values: dict[str, Any] = {"status": PostStatus.CONFIRMED.value, "relevance": "keluhan"}
    if topic:
        values["topic"] = topic
    if agency:
        values["agency"] = agency
    _claim(session, post_id=post_id, from_statuses=OPEN_STATUSES, values=values)
    review = Review(post_id=post_id, user_id=user.id, decision="confirm", relevance="keluhan",
                    topic=topic or (before.topic if before else None),
                    agency=agency or (before.agency if before else None), note=note[:2000])
    session.add(review)
    details: dict[str, Any] = {"topic": review.topic, "agency": review.agency}
    if before is not None and (topic and topic != before.topic or agency and agency != before.agency):
        details["corrected_from"] = {"topic": before.topic, "agency": before.agency}
    audit.record(session=session, actor=user.username, action="post.confirm", object_type="post",
                 object_id=post_id, details=details)
    session.flush()
    return review


def reject(
    *,
    session: Session,
    post_id: int,
    user: User,
    reason: str,
    duplicate_of_id: int | None = None,
    note: str = "",
) -> Review:
    """Reject a post: not a complaint, spam, or a duplicate of another post."""
    if reason not in REJECT_REASONS:
        raise ActionError("Alasan penolakan tidak dikenal.")
    values: dict[str, Any] = {"status": PostStatus.REJECTED.value}
    if reason == "duplicate":
        if not duplicate_of_id or duplicate_of_id == post_id:
            raise ActionError("Sebutkan nomor kiriman aslinya untuk penolakan 'duplikat'.")
        if session.get(Post, duplicate_of_id) is None:
            raise ActionError(f"Kiriman #{duplicate_of_id} tidak ditemukan.")
        values.update(duplicate_of_id=duplicate_of_id, duplicate_reason="reviewer")
    else:
        duplicate_of_id = None
        values["relevance"] = "bukan"
    _claim(session, post_id=post_id, from_statuses=OPEN_STATUSES, values=values)
    review = Review(post_id=post_id, user_id=user.id, decision=reason,
                    relevance=None if reason == "duplicate" else "bukan",
                    duplicate_of_id=duplicate_of_id, note=note[:2000])
    session.add(review)
    audit.record(session=session, actor=user.username, action=f"post.reject.{reason}", object_type="post",
                 object_id=post_id, details={"duplicate_of_id": duplicate_of_id} if duplicate_of_id else {})
    session.flush()
    return review


def _bulk(session: Session, post_ids: Iterable[int], action: Any) -> BulkResult:
    ids = list(dict.fromkeys(int(i) for i in post_ids))
    if len(ids) > MAX_BULK:
        raise ActionError(f"Paling banyak {MAX_BULK} kiriman sekaligus.")
    result = BulkResult()
    for post_id in ids:
        savepoint = session.begin_nested()
        try:
            action(post_id)
        except ActionError as exc:
            savepoint.rollback()
            result.skipped[post_id] = str(exc)
        else:
            savepoint.commit()
            result.done.append(post_id)
    return result


def bulk_confirm(*, session: Session, post_ids: Iterable[int], user: User) -> BulkResult:
    """Confirm many posts with their predicted labels; posts someone else handled are skipped."""
    return _bulk(session, post_ids, lambda pid: confirm(session=session, post_id=pid, user=user))


def bulk_reject(
    *, session: Session, post_ids: Iterable[int], user: User, reason: str, duplicate_of_id: int | None = None
) -> BulkResult:
    """Reject many posts for one reason; posts someone else handled are skipped."""
    if reason not in REJECT_REASONS:
        raise ActionError("Alasan penolakan tidak dikenal.")
    return _bulk(session, post_ids, lambda pid: reject(session=session, post_id=pid, user=user, reason=reason,
                                                       duplicate_of_id=duplicate_of_id))


def _check_labels(*, topic: str | None, agency: str | None, city: City | None) -> None:
    if city is None:
        return
    if topic and topic not in city.topics:
        raise ActionError("Topik tidak dikenal.")
    if agency and agency not in city.agencies:
        raise ActionError("OPD tidak dikenal.")


# --- complaint composer -----------------------------------------------------------------------------


@dataclass
class ComplaintForm:
    """What the composer submits: a formal LAPOR! complaint, edited by a reviewer."""

    title: str
    body: str
    category: str
    topic: str | None
    agency: str | None
    instansi: str
    opd: str = ""
    kecamatan: str | None = None
    kelurahan: str | None = None
    location_text: str = ""
    incident_date: datetime | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    anonymous: bool = False
    confidential: bool = True
    include_group: bool = False

    def validate(self, *, city: City, post: Post) -> dict[str, str]:
        """Field -> problem (in Bahasa Indonesia); empty when the complaint can be queued."""
        errors: dict[str, str] = {}
        self.title = _one_line(self.title)
        self.body = (self.body or "").replace("\r\n", "\n").strip()
        self.category = _one_line(self.category)
        self.instansi = _one_line(self.instansi)
        self.location_text = _one_line(self.location_text)
        if not TITLE_MIN <= len(self.title) <= TITLE_MAX:
            errors["title"] = f"Judul harus {TITLE_MIN}–{TITLE_MAX} karakter."
        if not BODY_MIN <= len(self.body) <= BODY_MAX:
            errors["body"] = f"Isi harus {BODY_MIN}–{BODY_MAX} karakter."
        if not self.category or len(self.category) > 200:
            errors["category"] = "Pilih kategori."
        if self.topic and self.topic not in city.topics:
            errors["topic"] = "Topik tidak dikenal."
        if self.agency and self.agency not in city.agencies:
            errors["agency"] = "OPD tidak dikenal."
        if not self.instansi or len(self.instansi) > 300:
            errors["instansi"] = "Instansi tujuan wajib diisi."
        if self.kecamatan and self.kecamatan not in city.kecamatan:
            errors["kecamatan"] = "Kecamatan tidak ada di kota ini."
        if self.kelurahan:
            if city.kelurahan_to_kecamatan.get(self.kelurahan) is None:
                errors["kelurahan"] = "Kelurahan tidak ada di kota ini."
            elif self.kecamatan and city.kelurahan_to_kecamatan[self.kelurahan] != self.kecamatan:
                errors["kelurahan"] = "Kelurahan tidak berada di kecamatan itu."
        if len(self.location_text) > 500:
            errors["location_text"] = "Lokasi terlalu panjang."
        allowed = {m.get("url") for m in (post.media or []) if isinstance(m, dict) and is_web_link(m.get("url"))}
        if any(a.get("url") not in allowed for a in self.attachments):
            errors["attachments"] = "Lampiran hanya boleh dari media kiriman ini."
        if self.incident_date and self.incident_date.tzinfo is None:
            errors["incident_date"] = "Tanggal kejadian tidak valid."
        return errors


def _one_line(value: str | None) -> str:
    return re.sub(r"\s+", " ", value or "").strip()


def group_members(*, session: Session, post: Post, limit: int = 50) -> list[Post]:
    """Other posts in this post's near-duplicate group (the group's first post included)."""
    if post.dup_group_id is None:
        return []
    rows = session.scalars(
        sa.select(Post)
        .where(sa.or_(Post.dup_group_id == post.dup_group_id, Post.id == post.dup_group_id), Post.id != post.id)
        .order_by(Post.id)
        .limit(limit)
    )
    return list(rows)


@dataclass
class Composed:
    """A complaint just created and its outbox row (deliver it after the commit)."""

    complaint: Complaint
    outbox_id: int | None


def compose_complaint(
    *, session: Session, post_id: int, user: User, form: ComplaintForm, city: City, settings: Settings | None = None
) -> Composed:
    """Create the formal complaint for a post and put it in the LAPOR! outbox, in the caller's transaction.

    A queued post is confirmed on the way. Raises ActionError with the validation problems, or
    ActionConflict when another reviewer already made a complaint of this post.
    """
    from pipelines import outbox  # FORWARDING owns it; imported here so the rest works without it

    post = session.get(Post, post_id)
    if post is None:
        raise ActionError(f"Kiriman #{post_id} tidak ditemukan.")
    errors = form.validate(city=city, post=post)
    if errors:
        raise ActionError(" ".join(errors.values()))
    if post.status in OPEN_STATUSES:
        confirm(session=session, post_id=post_id, user=user, topic=form.topic, agency=form.agency, city=city)
    else:
        # Take the row (PostgreSQL locks it until commit) and re-check: a second composer waits here.
        _claim(session, post_id=post_id, from_statuses=(PostStatus.CONFIRMED.value,), values={})
    body = form.body
    members = group_members(session=session, post=post) if form.include_group else []
    if members:
        links = "\n".join(f"- {m.url if is_web_link(m.url) else f'kiriman #{m.id}'}" for m in members)
        body = f"{body}\n\nKiriman serupa ({len(members)}):\n{links}"[:BODY_MAX + 2000]
    complaint = Complaint(
        post_id=post_id, title=form.title, body=body, category=form.category, topic=form.topic,
        agency=form.agency, opd=form.opd or city.opd_for(form.agency, kecamatan=form.kecamatan).name,
        instansi=form.instansi, kecamatan=form.kecamatan, kelurahan=form.kelurahan,
        location_text=form.location_text, incident_date=form.incident_date, attachments=form.attachments,
        anonymous=form.anonymous, confidential=form.confidential, auto=False, created_by_id=user.id,
    )
    try:
        with session.begin_nested():
            session.add(complaint)
            session.flush()
    except IntegrityError as exc:
        raise ActionConflict(f"Kiriman #{post_id} sudah dijadikan aduan oleh pengguna lain.") from exc
    audit.record(session=session, actor=user.username, action="complaint.create", object_type="complaint",
                 object_id=complaint.id, details={"post_id": post_id, "instansi": form.instansi,
                                                  "topic": form.topic, "agency": form.agency,
                                                  "group_members": [m.id for m in members]})
    audit.record(session=session, actor=user.username, action="post.compose", object_type="post",
                 object_id=post_id, details={"complaint_id": complaint.id})
    item = outbox.enqueue(session=session, complaint=complaint, actor=user.username, settings=settings)
    session.flush()
    return Composed(complaint=complaint, outbox_id=getattr(item, "id", None))


def schedule_delivery(outbox_id: int | None) -> None:
    """Ask a worker to deliver now; never raises (the beat sweep picks up anything missed)."""
    if outbox_id is None:
        return
    try:
        from pipelines.tasks.forward import schedule_delivery as _schedule
    except ImportError:
        return
    # The outbox row is committed; if the broker is down the beat sweep delivers it later.
    with contextlib.suppress(Exception):
        _schedule(outbox_id)
