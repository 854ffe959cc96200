"""The auto-forward policy, status sync with handling times and overdue flags, and the manual status."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring import db as jaring_db
from jaring.settings import reset_settings_cache
from pipelines import outbox, status_sync
from pipelines.forward_policy import (
    AutoForwardConfig,
    AutoForwardRule,
    StatusSyncConfig,
    apply_auto_forward,
    decide,
    load_forward_config,
)
from pipelines.models import AuditLog, Classification, Complaint, ComplaintStatusEvent, OutboxItem, Post
from tests.forwarding.conftest import ForwardEnv, queue_complaints, write_policy

RULES = {
    "enabled": True,
    "timezone": "Asia/Makassar",
    "daily_cap": 100,
    "rules": [
        {"topic": "infrastruktur", "agency": "PUPR", "min_relevance": 0.8, "min_topic": 0.6, "min_agency": 0.4,
         "daily_cap": 2},
        {"topic": "kriminalitas", "enabled": False},
    ],
}


def labelled_post(session: Session, n: int, *, topic: str = "infrastruktur", agency: str = "PUPR",
                  relevance_score: float = 0.95, **fields: object) -> Post:
    post = Post(platform="twitter", external_id=f"p{n}", text=f"Jalan di Oebobo rusak parah nomor {n}", raw={},
                status="queued", relevance="keluhan", relevance_score=relevance_score, topic=topic,
                topic_score=0.9, agency=agency, agency_score=0.7, **fields)
    session.add(post)
    session.flush()
    session.add(Classification(post_id=post.id, model_version="2026-11-27-tfidf-svc", relevance="keluhan",
                               relevance_score=relevance_score, topic=topic, topic_score=0.9, agency=agency,
                               agency_score=0.7, scores={}))
    session.flush()
    return post


@pytest.fixture
def policy(forward_env: ForwardEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_policy(tmp_path / "policy.yaml", auto_forward=RULES)
    monkeypatch.setenv("JARING_FORWARD_POLICY_FILE", str(path))
    reset_settings_cache()
    return path


def test_decide_is_strict_about_every_condition() -> None:
    rule = AutoForwardRule(topic="sampah", min_relevance=0.8, min_topic=0.5, min_agency=0.3, daily_cap=1)
    config = AutoForwardConfig(enabled=True, daily_cap=10, rules=(rule,))
    post = Post(relevance="keluhan", relevance_score=0.9, topic="sampah", topic_score=0.6, agency="LINGKUNGAN_HIDUP",
                agency_score=0.5)
    assert decide(config=config, post=post, auto_today=0, rule_today=0)[0] is True
    assert decide(config=config.model_copy(update={"enabled": False}), post=post, auto_today=0)[1].startswith(
        "kill switch")
    assert "daily cap 10" in decide(config=config, post=post, auto_today=10, rule_today=0)[1]
    assert "rule daily cap 1" in decide(config=config, post=post, auto_today=0, rule_today=1)[1]
    post.topic_score = 0.49
    assert "topic score" in decide(config=config, post=post, auto_today=0, rule_today=0)[1]
    post.topic_score, post.relevance = 0.9, "bukan"
    assert decide(config=config, post=post, auto_today=0, rule_today=0)[0] is False
    post.relevance, post.topic = "keluhan", "kesehatan"
    assert "no rule" in decide(config=config, post=post, auto_today=0, rule_today=0)[1]


def test_shipped_policy_file_is_valid_and_safe() -> None:
    config = load_forward_config(Path(__file__).resolve().parents[2] / "config" / "forward_policy.yaml")
    assert config.auto_forward.enabled and config.auto_forward.daily_cap > 0
    sensitive = {r.topic for r in config.auto_forward.rules if not r.enabled}
    assert {"kriminalitas", "kesehatan", "adminduk"} <= sensitive
    assert not (config.reply.twitter or config.reply.facebook or config.reply.instagram)  # replies off by default
    assert config.lapor_api.fields["title"] == "judul"


def test_auto_forward_enqueues_with_an_audited_decision(policy: Path, session: Session) -> None:
    post = labelled_post(session, 1)
    outbox_id = apply_auto_forward(session=session, post_id=post.id)
    session.commit()
    assert outbox_id is not None
    item = session.get(OutboxItem, outbox_id)
    complaint = session.get(Complaint, item.complaint_id)  # type: ignore[union-attr]
    assert complaint.auto and complaint.post_id == post.id and complaint.model_version == "2026-11-27-tfidf-svc"
    assert complaint.instansi and complaint.confidential
    assert post.status == "confirmed"
    entry = session.scalars(sa.select(AuditLog).where(AuditLog.action == "auto_forward.forwarded")).one()
    assert entry.details["model_version"] == "2026-11-27-tfidf-svc"
    assert entry.details["scores"]["relevance"] == ["keluhan", 0.95]
    assert apply_auto_forward(session=session, post_id=post.id) is None  # already a complaint


def test_auto_forward_refuses_near_duplicates_low_scores_caps_and_the_kill_switch(
    policy: Path, session: Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = labelled_post(session, 1)
    assert apply_auto_forward(session=session, post_id=first.id) is not None
    session.commit()
    near_dup = labelled_post(session, 2, duplicate_of_id=first.id, dup_group_id=first.id)
    same_group = labelled_post(session, 3, dup_group_id=first.id)
    unsure = labelled_post(session, 4, relevance_score=0.5)
    crime = labelled_post(session, 5, topic="kriminalitas", agency="SATPOLPP")
    for post in (near_dup, same_group, unsure, crime):
        assert apply_auto_forward(session=session, post_id=post.id) is None
    reasons = session.scalars(
        sa.select(AuditLog.details).where(AuditLog.action == "auto_forward.skipped").order_by(AuditLog.id)
    ).all()
    assert [r["reason"].split(" ")[0] for r in reasons] == ["near-duplicate", "near-duplicate", "relevance", "rule"]

    second = labelled_post(session, 6)
    assert apply_auto_forward(session=session, post_id=second.id) is not None
    third = labelled_post(session, 7)
    assert apply_auto_forward(session=session, post_id=third.id) is None  # the rule's daily cap is 2
    session.commit()

    off = write_policy(tmp_path / "off.yaml", auto_forward={**RULES, "enabled": False})
    monkeypatch.setenv("JARING_FORWARD_POLICY_FILE", str(off))
    reset_settings_cache()
    fourth = labelled_post(session, 8, topic="infrastruktur")
    assert apply_auto_forward(session=session, post_id=fourth.id) is None
    assert session.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 2


def test_handling_times_and_overdue_rules() -> None:
    api = load_forward_config(Path(__file__).resolve().parents[2] / "config" / "forward_policy.yaml").lapor_api
    config = StatusSyncConfig()
    friday = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 WITA
    # 3 working days from Friday is Wednesday: not overdue on Tuesday, overdue on Thursday.
    times = status_sync.handling_times(forwarded_at=friday, events=[], api=api, config=config,
                                       now=friday + timedelta(days=4))
    assert times.overdue == [] and times.verify_due == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    times = status_sync.handling_times(forwarded_at=friday, events=[], api=api, config=config,
                                       now=friday + timedelta(days=6))
    assert times.overdue == ["verify"]
    events = [("Belum Terverifikasi", friday), ("Terdisposisi", friday + timedelta(days=3)),
              ("Ditindaklanjuti", friday + timedelta(days=5))]
    times = status_sync.handling_times(forwarded_at=friday, events=events, api=api, config=config,
                                       now=friday + timedelta(days=20))
    assert times.verify_hours == 72 and times.respond_hours == 48
    assert times.overdue == ["close"]  # answered, but not closed 10 days later
    events.append(("Ditutup oleh Sistem", friday + timedelta(days=15)))
    times = status_sync.handling_times(forwarded_at=friday, events=events, api=api, config=config,
                                       now=friday + timedelta(days=20))
    assert times.overdue == [] and times.close_hours == 360


def test_status_sync_records_each_change_with_its_time(forward_env: ForwardEnv, session: Session) -> None:
    ids = queue_complaints(session, 2)
    tracking = [outbox.deliver(outbox_id=i).tracking_id for i in ids]
    at = datetime.now(UTC) + timedelta(minutes=5)
    forward_env.state.set_status(tracking[0], "Terdisposisi", at=at)
    forward_env.state.set_status(tracking[0], "Ditindaklanjuti", at=at + timedelta(hours=1))

    summary = status_sync.sync_all()
    assert summary.checked == 2 and summary.changed == 2 and summary.errors == 0
    session.expire_all()
    complaint = session.scalars(sa.select(Complaint).where(Complaint.tracking_id == tracking[0])).one()
    assert complaint.lapor_status == "Ditindaklanjuti" and complaint.status_checked_at is not None
    events = session.scalars(
        sa.select(ComplaintStatusEvent).where(ComplaintStatusEvent.complaint_id == complaint.id)
        .order_by(ComplaintStatusEvent.changed_at)
    ).all()
    assert [e.status for e in events] == ["Belum Terverifikasi", "Terdisposisi", "Ditindaklanjuti"]
    assert status_sync._aware(events[1].changed_at) == at
    assert status_sync.sync_all().changed == 0  # nothing new, nothing recorded twice

    forward_env.state.go_down(30)
    with pytest.raises(status_sync.LaporError):
        status_sync.sync_all()  # LAPOR! down: the task retries


def test_manual_status_from_the_admin(forward_env: ForwardEnv, session: Session) -> None:
    [outbox_id] = queue_complaints(session, 1)
    result = outbox.deliver(outbox_id=outbox_id)
    assert status_sync.record_manual_status(session=session, complaint_id=result.complaint_id,
                                            status="Selesai", actor="admin") == 1
    complaint = session.get(Complaint, result.complaint_id)
    assert complaint.lapor_status == "Selesai" and complaint.closed_at is not None  # type: ignore[union-attr]
    assert status_sync.open_complaint_ids(session=session) == []
    summary = status_sync.handling_summary(session=session)
    assert summary["forwarded"] == 1 and summary["median_close_hours"] is not None


def test_auto_forward_racing_a_reviewer_leaves_one_complaint(policy: Path, session: Session) -> None:
    import threading

    from sqlalchemy.exc import OperationalError

    from jaring.db import session_factory

    post = labelled_post(session, 1)
    session.commit()
    flushed, outcome = threading.Event(), {}

    def reviewer() -> None:
        with session_factory()() as s:
            s.add(Complaint(post_id=post.id, title="Jalan rusak", body="Jalan rusak di Oebobo", instansi="PUPR"))
            s.flush()
            flushed.set()
            threading.Event().wait(0.5)  # the policy tries to insert meanwhile
            s.commit()

    thread = threading.Thread(target=reviewer)
    thread.start()
    flushed.wait(10)
    with session_factory()() as s:
        try:
            outcome["result"] = apply_auto_forward(session=s, post_id=post.id)
            s.commit()
        except OperationalError:  # SQLite: the writer lock; the classify task retries and then skips
            s.rollback()
            outcome["result"] = "retry"
    thread.join(10)
    assert outcome["result"] in (None, "retry")
    assert session.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0
    with session_factory()() as s:
        assert apply_auto_forward(session=s, post_id=post.id) is None


def test_handling_summary_medians(forward_env: ForwardEnv, session: Session) -> None:
    now = datetime.now(UTC)
    for n, (verify_h, respond_h) in enumerate([(10, 20), (30, 40), (50, None)]):
        forwarded = now - timedelta(days=5)
        complaint = Complaint(title=f"Aduan {n}", body="Isi aduan yang cukup panjang.", tracking_id=f"T{n}",
                              forwarded_at=forwarded)
        session.add(complaint)
        session.flush()
        session.add(ComplaintStatusEvent(complaint_id=complaint.id, status="Belum Terverifikasi", changed_at=forwarded))
        session.add(ComplaintStatusEvent(complaint_id=complaint.id, status="Terdisposisi",
                                         changed_at=forwarded + timedelta(hours=verify_h)))
        if respond_h is not None:
            session.add(ComplaintStatusEvent(complaint_id=complaint.id, status="Ditindaklanjuti",
                                             changed_at=forwarded + timedelta(hours=verify_h + respond_h)))
    old = Complaint(title="Lama", body="Isi aduan lama sekali.", tracking_id="OLD",
                    forwarded_at=now - timedelta(days=400))
    session.add(old)
    session.commit()
    summary = status_sync.handling_summary(session=session)
    assert summary["forwarded"] == 3  # the 400-day-old one is outside the default window
    assert summary["median_verify_hours"] == 30.0 and summary["median_respond_hours"] == 30.0
    assert summary["median_close_hours"] is None


def test_two_workers_never_both_take_the_last_slot_of_the_daily_cap(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker B's cap count waits for worker A's transaction, then sees A's complaint and refuses."""
    monkeypatch.setenv("JARING_DATABASE_URL", postgres_url)
    path = write_policy(tmp_path / "cap.yaml", auto_forward={**RULES, "daily_cap": 1})
    monkeypatch.setenv("JARING_FORWARD_POLICY_FILE", str(path))
    reset_settings_cache()
    jaring_db.reset_engine()
    factory = jaring_db.session_factory()
    with factory() as a, factory() as b:
        first, second = labelled_post(a, 1), labelled_post(a, 2)
        a.commit()
        assert apply_auto_forward(session=a, post_id=first.id) is not None  # A takes the only slot, not committed
        outcome: dict[str, int | None] = {}
        worker_b = threading.Thread(target=lambda: outcome.update(b=apply_auto_forward(session=b, post_id=second.id)))
        worker_b.start()
        worker_b.join(1.0)
        assert worker_b.is_alive(), "B counted while A's forward was still uncommitted"
        a.commit()
        worker_b.join(10)
        b.commit()
    assert outcome == {"b": None}
    with factory() as check:
        assert check.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 1
        reason = check.scalars(sa.select(AuditLog.details).where(AuditLog.action == "auto_forward.skipped")).one()
        assert reason["reason"] == "daily cap 1 reached"


def test_kill_switch_also_holds_automatic_complaints_already_in_the_outbox(
    policy: Path, forward_env: ForwardEnv, session: Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    auto_id = apply_auto_forward(session=session, post_id=labelled_post(session, 1).id)
    session.commit()
    assert auto_id is not None
    [reviewed_id] = queue_complaints(session, 1)  # composed by a reviewer

    off = write_policy(tmp_path / "off.yaml", auto_forward={**RULES, "enabled": False})
    monkeypatch.setenv("JARING_FORWARD_POLICY_FILE", str(off))
    reset_settings_cache()
    assert outbox.deliver(outbox_id=auto_id).outcome == "held"
    assert outbox.due_ids(session=session) == [reviewed_id]  # the sweep leaves the automatic one alone
    assert outbox.deliver(outbox_id=reviewed_id).outcome == "sent"
    session.expire_all()
    held = session.get(OutboxItem, auto_id)
    assert held is not None and held.state == "pending" and held.attempts == 0
    assert len(forward_env.state.reports) == 1  # only the reviewer's complaint reached LAPOR!

    monkeypatch.setenv("JARING_FORWARD_POLICY_FILE", str(policy))  # switched back on
    reset_settings_cache()
    assert outbox.due_ids(session=session) == [auto_id]
    assert outbox.deliver(outbox_id=auto_id).outcome == "sent"
    assert len(forward_env.state.reports) == 2


def test_auto_forward_never_overrides_a_reviewer_who_rejected_the_post_meanwhile(
    policy: Path, session: Session
) -> None:
    from jaring.db import session_factory
    from pipelines import review_actions
    from pipelines.models import User

    post = labelled_post(session, 1)
    humas = User(username="rina", password_hash="x", role="reviewer")
    session.add(humas)
    session.commit()
    with session_factory()() as classify_batch:
        batch = classify_batch.scalars(sa.select(Post).where(Post.id == post.id)).all()  # classify loaded its batch
        assert [p.status for p in batch] == ["queued"]
        with session_factory()() as reviewer:  # ... and a reviewer rejects the post before the policy runs
            review_actions.reject(session=reviewer, post_id=post.id, user=reviewer.get(User, humas.id),
                                  reason="spam")
            reviewer.commit()
        assert apply_auto_forward(session=classify_batch, post_id=post.id) is None
        classify_batch.commit()
    session.expire_all()
    assert session.get(Post, post.id).status == "rejected"  # type: ignore[union-attr]
    assert session.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0


class _ReviewerActsDuringPrediction:
    """The shipped model, with a reviewer acting on the batch between loading it and writing the labels."""

    def __init__(self, model, reviewer_action) -> None:  # type: ignore[no-untyped-def]
        self.model, self.reviewer_action, self.version = model, reviewer_action, model.version

    def predict(self, texts):  # type: ignore[no-untyped-def]
        predictions = self.model.predict(texts)
        self.reviewer_action()
        return predictions

    def explain(self, text):  # type: ignore[no-untyped-def]
        return self.model.explain(text)


def test_a_retried_or_redelivered_classify_task_never_overrides_a_reviewer(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jaring.db import session_factory
    from jaring.settings import get_settings
    from pipelines import review_actions
    from pipelines.classify import classify_posts, get_model
    from pipelines.models import User

    off = write_policy(tmp_path / "off.yaml", auto_forward={**RULES, "enabled": False})  # every post waits
    monkeypatch.setenv("JARING_FORWARD_POLICY_FILE", str(off))
    reset_settings_cache()
    model = get_model(get_settings().models_dir)
    text = "Jalan di Oebobo rusak parah, lubang besar dekat pasar. Tolong perbaiki!"
    corrected = Post(platform="twitter", external_id="c1", text=text, raw={}, status="new")
    rejected = Post(platform="twitter", external_id="c2", text=text + " Segera!", raw={}, status="new")
    humas = User(username="rina", password_hash="x", role="reviewer")
    session.add_all([corrected, rejected, humas])
    session.commit()

    # First delivery: both posts are classified and queued for a reviewer.
    with session_factory()() as task:
        assert classify_posts(session=task, post_ids=[corrected.id], model=model).classified == [corrected.id]
    session.expire_all()
    assert session.get(Post, corrected.id).status == "queued"  # type: ignore[union-attr]
    with session_factory()() as reviewer:  # the reviewer corrects the labels and confirms
        review_actions.confirm(session=reviewer, post_id=corrected.id, user=reviewer.get(User, humas.id),
                               topic="air_sda", agency="AIR_MINUM")
        reviewer.commit()

    def reject_while_classifying() -> None:
        with session_factory()() as reviewer:
            review_actions.reject(session=reviewer, post_id=rejected.id, user=reviewer.get(User, humas.id),
                                  reason="spam")
            reviewer.commit()

    # Redelivery of the first message, and a task that loaded a still-new post a reviewer rejects mid-way.
    with session_factory()() as task:
        classify_posts(session=task, post_ids=[corrected.id], model=model)
    with session_factory()() as task:
        classify_posts(session=task, post_ids=[rejected.id],
                       model=_ReviewerActsDuringPrediction(model, reject_while_classifying))

    session.expire_all()
    after = session.get(Post, corrected.id)
    assert (after.status, after.relevance, after.topic, after.agency) == (  # type: ignore[union-attr]
        "confirmed", "keluhan", "air_sda", "AIR_MINUM")
    after = session.get(Post, rejected.id)
    assert (after.status, after.relevance) == ("rejected", "bukan")  # type: ignore[union-attr]
    # Every verdict is kept as history, even the ones that came too late to label the post.
    counts = dict(session.execute(
        sa.select(Classification.post_id, sa.func.count()).group_by(Classification.post_id)).all())
    assert counts == {corrected.id: 2, rejected.id: 1}
    assert session.scalar(sa.select(sa.func.count()).select_from(Complaint)) == 0
