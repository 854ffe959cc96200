"""The classifier commands, driven through typer's CliRunner on an app they register into."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from classifier.labels import LABELS
from classifier.registry import current_version, save_model
from classifier.training import train_model
from jaring.cli import models as models_cli
from tests.classifier.conftest import SHIPPED_MODELS


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    models_cli.register(app)
    return app


def _run(app: typer.Typer, *args: str) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_classify_survives_hostile_input(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    rows = [
        ("1", "jalan di depan pasar oebobo rusak parah, tolong diperbaiki"),
        ("2", ""),
        ("3", "x" * 1_000_000),
        ("4", "\x00\x01\x02\x03binary\xff" * 100),
        ("5", "The quick brown fox jumps over the lazy dog and then goes to the river bank"),
        ("6", "=cmd|' /C calc'!A0"),
    ]
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows(rows)
    with source.open("ab") as handle:  # invalid UTF-8 on its own row
        handle.write(b'7,"\xff\xfe\xfa broken bytes"\n')
    out = tmp_path / "out.csv"
    result = _run(app, "classify", "--input", source, "--output", out, "--models-dir", SHIPPED_MODELS)
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        got = list(csv.DictReader(handle))
    assert list(got[0]) == list(models_cli.OUTPUT_COLUMNS)
    assert [r["id"] for r in got] == ["1", "2", "3", "4", "5", "6", "7"]
    by_id = {r["id"]: r for r in got}
    assert by_id["1"]["relevance"] == "keluhan" and float(by_id["1"]["relevance_score"]) > 0.5
    for row_id in ("2", "3", "4", "5"):
        row = by_id[row_id]
        assert (row["relevance"], row["relevance_score"]) == ("bukan", "0.0000"), row_id
        assert float(row["topic_score"]) == 0.0 and float(row["agency_score"]) == 0.0
    for row in got:
        for head in ("relevance", "topic", "agency"):
            assert row[head] in LABELS[head]
            assert 0.0 <= float(row[f"{head}_score"]) <= 1.0


def test_classify_rejects_a_csv_without_a_text_column(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,body\n1,halo\n", encoding="utf-8")
    result = _run(app, "classify", "--input", source, "--output", tmp_path / "o.csv", "--models-dir", SHIPPED_MODELS)
    assert result.exit_code != 0
    assert "id,text" in result.output


def test_promote_refusal_through_the_cli(app: typer.Typer, tmp_path: Path, tiny_data_dir: Path) -> None:
    heads, card = train_model(data_dir=tiny_data_dir, cv_folds=2)
    card = json.loads(json.dumps(card, default=str))
    for version, f1 in (("good", 0.9), ("worse", 0.5)):
        for head in card["metrics"]["cv"]:
            card["metrics"]["cv"][head]["macro_f1"] = f1
        save_model(tmp_path, version, heads, card)
    assert _run(app, "models", "promote", "good", "--models-dir", tmp_path).exit_code == 0
    refused = _run(app, "models", "promote", "worse", "--models-dir", tmp_path)
    assert refused.exit_code == 1
    assert "relevance: cross-validated macro-F1 0.5000 is below the current good's 0.9000" in refused.output
    assert current_version(tmp_path) == "good"
    forced = _run(app, "models", "promote", "worse", "--force", "--models-dir", tmp_path)
    assert forced.exit_code == 0 and current_version(tmp_path) == "worse"
    listed = _run(app, "models", "list", "--models-dir", tmp_path)
    assert "good" in listed.output and "worse" in listed.output
    assert _run(app, "models", "rollback", "--models-dir", tmp_path).exit_code == 0
    assert current_version(tmp_path) == "good"
    shown = _run(app, "models", "show", "--models-dir", tmp_path)
    assert shown.exit_code == 0 and '"version": "good"' in shown.output


def test_promote_uses_both_versions_evaluations_over_a_single_shuffle(
    app: typer.Typer, tmp_path: Path, tiny_data_dir: Path
) -> None:
    heads, card = train_model(data_dir=tiny_data_dir, cv_folds=2)
    card = json.loads(json.dumps(card, default=str))
    save_model(tmp_path, "good", heads, card)
    card["metrics"]["cv"]["relevance"]["macro_f1"] -= 0.01  # the same model, one unlucky shuffle on its card
    save_model(tmp_path, "next", heads, card)
    assert _run(app, "models", "promote", "good", "--models-dir", tmp_path).exit_code == 0
    assert _run(app, "models", "promote", "next", "--models-dir", tmp_path).exit_code == 1

    for version in ("good", "next"):
        result = _run(
            app,
            "evaluate",
            "--data-dir",
            tiny_data_dir,
            "--models-dir",
            tmp_path,
            "--version",
            version,
            "--folds",
            "2",
            "--head",
            "relevance",
            "--seed",
            "0",
            "--seed",
            "1",
            "--output-dir",
            tmp_path / version / "evaluation",
        )
        assert result.exit_code == 0, result.output
        assert f"evaluating the configuration of model {version}" in result.output
    report = json.loads((tmp_path / "next" / "evaluation" / "evaluation.json").read_text())
    assert report["version"] == "next" and report["seeds"] == [0, 1]
    assert set(report["data"]["files_sha256"]) == {"tweets_bandung.csv", "lapor_reports.csv"}

    promoted = _run(app, "models", "promote", "next", "--models-dir", tmp_path)
    assert promoted.exit_code == 0, promoted.output
    assert current_version(tmp_path) == "next"
    assert "mean of grouped 2-fold CV over seeds 0, 1" in promoted.output
    mean = report["heads"]["relevance"]["repeated"]["model_mean"]
    assert f"{mean:.4f}" in promoted.output


def test_train_command_saves_a_version_with_a_card(app: typer.Typer, tmp_path: Path, tiny_data_dir: Path) -> None:
    result = _run(app, "train", "--data-dir", tiny_data_dir, "--models-dir", tmp_path, "--cv-folds", "2", "--promote")
    assert result.exit_code == 0, result.output
    version = current_version(tmp_path)
    card = json.loads((tmp_path / version / "model_card.json").read_text())
    assert card["metrics"]["cv"]["relevance"]["macro_f1"] > 0.5
    assert card["heads"]["agency"]["training_rows"] == {"lapor": 48}


def _evaluate_relevance(app: typer.Typer, data_dir: Path, workdir: Path, *options: str) -> tuple[object, Path]:
    """Train and promote a model on ``data_dir``, then evaluate its relevance head (2 folds) into workdir/eval."""
    models = workdir / "models"
    assert _run(app, "train", "--data-dir", data_dir, "--models-dir", models, "--cv-folds", "2",
                "--promote").exit_code == 0
    out = workdir / "eval"
    result = _run(app, "evaluate", "--data-dir", data_dir, "--models-dir", models, "--folds", "2",
                  "--head", "relevance", "--output-dir", out, *options)
    return result, out


def test_evaluate_measures_baseline_and_model_on_the_same_splits(
    app: typer.Typer, tmp_path: Path, tiny_data_dir: Path
) -> None:
    result, out = _evaluate_relevance(app, tiny_data_dir, tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "evaluation.json").read_text())
    row = report["heads"]["relevance"]
    assert set(row) >= {"baseline", "model", "macro_f1_ratio"}
    assert row["baseline"]["n"] == row["model"]["n"] == 120
    assert row["macro_f1_ratio"] == round(row["model"]["macro_f1"] / row["baseline"]["macro_f1"], 4)
    assert set(row["model"]["per_class"]) == {"keluhan", "bukan", "respon"}
    for name in ("confusion_relevance.png", "confusion_relevance_baseline.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_repeats_over_seeds_and_tries_configuration_changes(
    app: typer.Typer, tmp_path: Path, tiny_data_dir: Path
) -> None:
    result, out = _evaluate_relevance(
        app, tiny_data_dir, tmp_path, "--seed", "0", "--seed", "3",
        "--set", "relevance.raw_view=true", "--set", "relevance.raw_char_ngrams=[2, 4]", "--set", "relevance.C=0.3",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "evaluation.json").read_text())
    row = report["heads"]["relevance"]
    assert report["seeds"] == [0, 3]
    assert row["config"]["raw_view"] is True and row["config"]["C"] == 0.3 and row["config"]["raw_char_ngrams"] == [2, 4]
    repeated = row["repeated"]
    assert len(repeated["model_macro_f1"]) == len(repeated["baseline_macro_f1"]) == 2
    assert repeated["model_macro_f1"][0] == row["model"]["macro_f1"]
    assert repeated["model_mean"] == round(sum(repeated["model_macro_f1"]) / 2, 4)
    assert report["overrides"] == ["relevance.raw_view=true", "relevance.raw_char_ngrams=[2, 4]", "relevance.C=0.3"]
    assert f"{repeated['model_mean']:.4f}" in result.output  # the repeated-CV table


@pytest.mark.parametrize(("override", "message"), [
    ("relevance.C", "expected head.field=value"),
    ("sentiment.C=1", "unknown head 'sentiment'"),
    ("agency.learning_rate=1", "agency has no setting 'learning_rate'"),
])
def test_evaluate_refuses_an_unknown_override(app: typer.Typer, tmp_path: Path, override: str, message: str) -> None:
    result = _run(app, "evaluate", "--models-dir", SHIPPED_MODELS, "--set", override, "--output-dir", tmp_path)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "evaluation.json").exists()
