"""Retraining from reviews: latest review per post, de-duplicated, weighted, counted in the card."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from classifier.training import load_head_data, train_model
from pipelines.models import Post, Review
from pipelines.retrain import reviewed_labels


def _post(session: Session, n: int, text: str) -> Post:
    post = Post(platform="twitter", external_id=f"t{n}", text=text)
    session.add(post)
    session.flush()
    return post


def test_reviewed_labels_merge_latest_decision_and_deduplicate(session: Session) -> None:
    a = _post(session, 1, "Jalan di Oebobo rusak parah")
    b = _post(session, 2, "jalan di  oebobo RUSAK parah")  # same text, different case and spacing
    c = _post(session, 3, "selamat pagi pak wali")
    d = _post(session, 4, "lampu jalan mati")
    e = _post(session, 5, "")
    session.add_all([
        Review(post_id=a.id, decision="confirm", relevance="keluhan", topic="perhubungan", agency="PERHUBUNGAN"),
        Review(post_id=a.id, decision="confirm", relevance="keluhan", topic="infrastruktur", agency="PUPR"),
        Review(post_id=b.id, decision="confirm", relevance="keluhan", topic="infrastruktur", agency="PUPR"),
        Review(post_id=c.id, decision="not_complaint", relevance="bukan"),
        Review(post_id=d.id, decision="duplicate", duplicate_of_id=a.id),
        Review(post_id=e.id, decision="confirm", relevance="keluhan", topic="sampah", agency="NOT_A_LABEL"),
    ])
    session.commit()
    found = reviewed_labels(session=session)
    rows = {r.text.lower(): r for r in found.rows}
    assert len(found.rows) == 2
    road = rows["jalan di  oebobo rusak parah"]  # the later review of the same text wins
    assert (road.relevance, road.topic, road.agency) == ("keluhan", "infrastruktur", "PUPR")
    greeting = rows["selamat pagi pak wali"]
    assert (greeting.relevance, greeting.topic, greeting.agency) == ("bukan", None, None)
    assert found.counts == {
        "confirm": 2, "not_complaint": 1, "merged_same_text": 1,
        "skipped_duplicate_decision": 1, "skipped_empty_text": 1,
    }


def test_reviews_join_training_only_weighted_and_counted(session: Session, tiny_data_dir: Path) -> None:
    new = _post(session, 1, "got mampet di kelapa lima banjir tiap hujan")
    known = _post(session, 2, "@pemkot jalan rusak berlubang di oebobo")  # already in the training file
    session.add_all([
        Review(post_id=new.id, decision="confirm", relevance="keluhan", topic="infrastruktur", agency="PUPR"),
        Review(post_id=known.id, decision="confirm", relevance="keluhan", topic="infrastruktur", agency="PUPR"),
    ])
    session.commit()
    reviews = reviewed_labels(session=session).rows
    data = load_head_data(tiny_data_dir, reviews=reviews, review_weight=3.0)
    relevance = data["relevance"]
    assert relevance.extra_texts == ["got mampet di kelapa lima banjir tiap hujan"]
    assert list(relevance.extra_weights) == [3.0]
    assert data["agency"].sources == {"lapor": 48, "reviews": 2}  # tweets are new to the LAPOR! head
    _, card = train_model(data_dir=tiny_data_dir, reviews=reviews, review_weight=3.0, cv_folds=0)
    card = json.loads(json.dumps(card, default=str))
    assert card["data"]["reviews_used"] == 4
    # topic also learns from the LAPOR! DUKCAPIL reports (adminduk), training-only
    assert card["heads"]["topic"]["training_rows"] == {"tweets": 72, "lapor": 16, "reviews": 1}


def test_train_with_reviews_through_the_cli(session: Session, tiny_data_dir: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from jaring.cli import models as models_cli

    post = _post(session, 1, "got mampet di kelapa lima banjir tiap hujan")
    session.add(Review(post_id=post.id, decision="confirm", relevance="keluhan", topic="infrastruktur", agency="PUPR"))
    session.commit()
    app = typer.Typer()
    models_cli.register(app)
    models = tmp_path / "models"
    result = CliRunner().invoke(app, ["train", "--with-reviews", "--data-dir", str(tiny_data_dir),
                                      "--models-dir", str(models), "--cv-folds", "0"])
    assert result.exit_code == 0, result.output
    (version,) = [p for p in models.iterdir() if p.is_dir()]
    card = json.loads((version / "model_card.json").read_text())
    assert card["data"]["reviews_used"] == 3
    assert card["data"]["review_decisions"] == {"confirm": 1}
    assert card["heads"]["agency"]["training_rows"] == {"lapor": 48, "reviews": 1}
    assert "reviewer labels used: 3" in (version / "MODEL_CARD.md").read_text()
