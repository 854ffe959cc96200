"""Reviewer-confirmed and corrected labels, read from the database for ``jaring train --with-reviews``.

For each post the latest review wins. A confirmation gives relevance ``keluhan`` plus the topic and
agency the reviewer kept or chose; a rejection (not a complaint, spam) gives relevance ``bukan``;
duplicates teach nothing and are skipped. Texts are de-duplicated (case and spacing folded) so a
complaint posted five times is one training row, and labels outside the model's label sets are dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from classifier.labels import LABELS
from classifier.training import ReviewRow
from pipelines.models import Post, Review

MAX_TEXT_CHARS = 5_000


@dataclass
class ReviewedLabels:
    """Training rows from reviews and where they came from."""

    rows: list[ReviewRow] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # by decision, plus skipped_* reasons


def _text_key(text: str) -> str:
    return " ".join(text.lower().split())


def _valid(head: str, label: str | None) -> str | None:
    return label if label in LABELS[head] else None


def reviewed_labels(*, session: Session) -> ReviewedLabels:
    """Every post's latest review as a training row, de-duplicated by text."""
    latest = sa.select(Review.post_id, sa.func.max(Review.id).label("review_id")).group_by(Review.post_id).subquery()
    query = (
        sa.select(Review, Post.text)
        .join(latest, Review.id == latest.c.review_id)
        .join(Post, Post.id == Review.post_id)
        .order_by(Review.id)
    )
    counts: Counter[str] = Counter()
    by_text: dict[str, ReviewRow] = {}
    for review, text in session.execute(query):
        text = (text or "")[:MAX_TEXT_CHARS]
        if review.decision == "duplicate":
            counts["skipped_duplicate_decision"] += 1
            continue
        if not text.strip():
            counts["skipped_empty_text"] += 1
            continue
        if review.decision == "confirm":
            row = ReviewRow(
                text=text,
                relevance=_valid("relevance", review.relevance or "keluhan"),
                topic=_valid("topic", review.topic),
                agency=_valid("agency", review.agency),
            )
        else:  # not_complaint, spam, or any other rejection
            row = ReviewRow(text=text, relevance=_valid("relevance", review.relevance or "bukan"), topic=None, agency=None)
        key = _text_key(text)
        if key in by_text:
            counts["merged_same_text"] += 1
        by_text[key] = row  # the later review of the same text wins
        counts[review.decision] += 1
    return ReviewedLabels(rows=list(by_text.values()), counts=dict(counts))
