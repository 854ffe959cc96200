"""Classify stored posts: store each verdict, put the labels, place and priority on the post, route it.

The model is loaded once per process and swapped when ``models/CURRENT`` names another version, so
running workers pick up a promoted model without a restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, case, or_, select, update
from sqlalchemy.orm import Session

from classifier.city import load_city
from classifier.registry import current_version, load_current
from jaring.db import membership_conditions
from jaring.settings import Settings, get_settings
from pipelines.models import Classification, Post, PostStatus, utcnow
from pipelines.review_actions import OPEN_STATUSES

log = logging.getLogger(__name__)

_model_lock = threading.Lock()
_model_cache: dict[Path, Any] = {}


def get_model(models_dir: Path) -> Any:
    """The current model for ``models_dir``, reloaded when the promoted version changed."""
    version = current_version(models_dir)
    with _model_lock:
        model = _model_cache.get(models_dir)
        if model is None or model.version != version:
            model = load_current(models_dir)
            _model_cache[models_dir] = model
            log.info("loaded model %s from %s", model.version, models_dir)
        return model


def priority_for(*, relevance_scores: dict[str, float], is_duplicate: bool) -> float:
    """Inbox order: likely complaints first, then uncertain verdicts; folded duplicates last."""
    p_complaint = relevance_scores.get("keluhan", 0.0)
    uncertainty = 1.0 - max(relevance_scores.values(), default=1.0)
    priority = p_complaint + 0.5 * uncertainty
    return round(priority - (1.0 if is_duplicate else 0.0), 6)


@dataclass
class ClassifyOutcome:
    """What one classify call did."""

    classified: list[int] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    model_version: str = ""


def classify_posts(
    *, session: Session, post_ids: list[int], settings: Settings | None = None, model: Any = None
) -> ClassifyOutcome:
    """Classify the given posts, route them, apply the auto-forward policy, and commit."""
    settings = settings or get_settings()
    model = model or get_model(settings.models_dir)
    posts = session.scalars(select(Post).where(Post.id.in_(post_ids)).order_by(Post.id)).all()
    outcome = ClassifyOutcome(model_version=model.version)
    if not posts:
        return outcome
    city = load_city(settings.city_file)
    predictions = model.predict([p.text or "" for p in posts])
    for post, prediction in zip(posts, predictions, strict=True):
        explanation = model.explain(post.text or "") if prediction.relevance == "keluhan" else {}
        session.add(
            Classification(
                post_id=post.id,
                model_version=model.version,
                relevance=prediction.relevance,
                relevance_score=prediction.relevance_score,
                topic=prediction.topic,
                topic_score=prediction.topic_score,
                agency=prediction.agency,
                agency_score=prediction.agency_score,
                scores=prediction.scores,
                explanation={head: [[t, float(w)] for t, w in terms] for head, terms in explanation.items()},
            )
        )
        labels: dict[str, Any] = {
            "relevance": prediction.relevance,
            "relevance_score": prediction.relevance_score,
            "topic": prediction.topic,
            "topic_score": prediction.topic_score,
            "agency": prediction.agency,
            "agency_score": prediction.agency_score,
            "priority": priority_for(
                relevance_scores=prediction.scores.get("relevance", {}),
                is_duplicate=post.duplicate_of_id is not None,
            ),
        }
        location = city.find_location(post.text or "")
        if location is not None:
            labels.update(kecamatan=location.kecamatan, kelurahan=location.kelurahan)
        # Conditional, like a reviewer's own action: ``post`` was loaded before the prediction, and a retried
        # or redelivered task may run long after a reviewer confirmed, corrected or rejected it. Then the
        # reviewer wins and the verdict above is kept only as history.
        labelled = session.execute(
            update(Post)
            .where(Post.id == post.id, Post.status.in_(OPEN_STATUSES))
            .values(
                status=case((Post.status == PostStatus.NEW.value, PostStatus.QUEUED.value), else_=Post.status),
                updated_at=utcnow(),
                **labels,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        post_id = post.id
        session.expire(post)  # the policy below must read what the database now holds
        if labelled != 1:
            log.info("post %s was decided by a reviewer: verdict stored, labels left as they are", post_id)
        outcome.classified.append(post_id)
    session.flush()
    outcome.outbox_ids = _apply_policy(session=session, post_ids=outcome.classified, settings=settings)
    session.commit()
    return outcome


def _apply_policy(*, session: Session, post_ids: list[int], settings: Settings) -> list[int]:
    from pipelines.forward_policy import apply_auto_forward

    outbox_ids = []
    for post_id in post_ids:
        outbox_id = apply_auto_forward(session=session, post_id=post_id, settings=settings)
        if outbox_id is not None:
            outbox_ids.append(outbox_id)
    return outbox_ids


def pending_post_ids(*, session: Session, requeue_after: timedelta, limit: int = 1000) -> list[int]:
    """Ids of unclassified posts with no classify message published in the last ``requeue_after``."""
    stale = utcnow() - requeue_after
    return list(
        session.scalars(
            select(Post.id)
            .where(Post.status == PostStatus.NEW.value)
            .where(or_(Post.classify_queued_at.is_(None), Post.classify_queued_at < stale))
            .order_by(Post.id)
            .limit(limit)
        )
    )


def mark_queued(*, session: Session, post_ids: list[int]) -> None:
    """Record that classify messages for these posts are about to be published."""
    now = utcnow()
    for condition in membership_conditions(session.connection(), Post.__table__.c.id, post_ids, BigInteger()):
        session.execute(update(Post).where(condition).values(classify_queued_at=now))
