"""Classifier commands: train, evaluate, classify a CSV, and the model registry (list/show/promote/rollback)."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from jaring.settings import get_settings

console = Console()
errors = Console(stderr=True, soft_wrap=True)

OUTPUT_COLUMNS = ("id", "relevance", "relevance_score", "topic", "topic_score", "agency", "agency_score")
CLASSIFY_BATCH = 512
MAX_FIELD_BYTES = 16 * 1024 * 1024


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate``, ``classify`` and the ``models`` group to ``app``."""
    app.command()(train)
    app.command()(evaluate)
    app.command()(classify)
    models_app = typer.Typer(help="The model registry: list, show, promote, roll back.", no_args_is_help=True)
    models_app.command("list")(list_models)
    models_app.command("show")(show_model)
    models_app.command("promote")(promote_model)
    models_app.command("rollback")(rollback_model)
    app.add_typer(models_app, name="models")


def _models_dir(models_dir: Path | None) -> Path:
    return Path(models_dir) if models_dir else get_settings().models_dir


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
    )


class _Bars:
    """Adapts the library's (description, done, total) callbacks to one rich bar per description."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, description: str, done: int, total: int) -> None:
        if description not in self.tasks:
            self.tasks[description] = self.progress.add_task(description, total=total)
        self.progress.update(self.tasks[description], completed=done)


def train(
    data_dir: Path = typer.Option(None, help="Training data folder (default: JARING_TRAINING_DATA_DIR)."),
    models_dir: Path = typer.Option(None, help="Model registry folder (default: JARING_MODELS_DIR)."),
    with_reviews: bool = typer.Option(
        False, "--with-reviews", help="Add reviewer-confirmed/corrected labels."
    ),
    review_weight: float = typer.Option(2.0, min=0.0, help="Sample weight of a reviewer label."),
    cv_folds: int = typer.Option(5, min=0, max=10, help="Grouped CV folds for the model card (0: skip)."),
    promote: bool = typer.Option(False, "--promote", help="Promote the new model if it is not worse."),
) -> None:
    """Train all three heads, cross-validate them, and save a new model version with its card."""
    from classifier.registry import PromotionRefused, new_version_name, save_model
    from classifier.registry import promote as do_promote
    from classifier.training import train_model

    settings = get_settings()
    data_dir = Path(data_dir) if data_dir else settings.training_data_dir
    models_dir = _models_dir(models_dir)
    reviews, review_counts = None, {}
    if with_reviews:
        from jaring.db import session_scope
        from pipelines.retrain import reviewed_labels

        with session_scope() as session:
            found = reviewed_labels(session=session)
        reviews, review_counts = found.rows, found.counts
        errors.print(f"{len(found.rows)} reviewed posts after de-duplication: {found.counts}")
    started = time.perf_counter()
    with _progress() as progress:
        heads, card = train_model(
            data_dir=data_dir,
            reviews=reviews,
            review_weight=review_weight,
            cv_folds=cv_folds,
            progress=_Bars(progress),
        )
    card["data"]["review_decisions"] = review_counts
    card["train_seconds_with_cv"] = round(time.perf_counter() - started, 1)
    version = new_version_name()
    folder = save_model(models_dir, version, heads, card)
    _print_metrics(card)
    console.print(f"saved [bold]{version}[/bold] in {folder} (fit {card['fit_seconds']} s)")
    if promote:
        try:
            do_promote(models_dir, version)
            console.print(f"[green]{version} is now the current model[/green]")
        except PromotionRefused as exc:
            errors.print(f"[yellow]not promoted:[/yellow] {exc}")


def _print_metrics(card: dict[str, Any]) -> None:
    table = Table("head", "CV macro-F1", "accuracy", "rows")
    for head, metrics in card.get("metrics", {}).get("cv", {}).items():
        table.add_row(head, f"{metrics['macro_f1']:.4f}", f"{metrics['accuracy']:.4f}", str(metrics["n"]))
    console.print(table)


def evaluate(
    data_dir: Path = typer.Option(None, help="Training data folder (default: JARING_TRAINING_DATA_DIR)."),
    models_dir: Path = typer.Option(None, help="Model registry folder (default: JARING_MODELS_DIR)."),
    version: str = typer.Option(None, help="Whose configuration to evaluate (default: the current model)."),
    folds: int = typer.Option(5, min=2, max=10, help="Grouped stratified CV folds."),
    head: list[str] = typer.Option(None, "--head", help="Only these heads (repeatable)."),
    output_dir: Path = typer.Option(None, help="Where to write evaluation.json and confusion PNGs."),
    with_ablation: bool = typer.Option(False, "--ablation", help="Also flip each preprocessing step (slow)."),
    seed: list[int] = typer.Option(
        None,
        "--seed",
        help="Repeat the CV with these fold shuffles (repeatable); the report gives the means.",
    ),
    overrides: list[str] = typer.Option(
        None, "--set", help="Try a configuration change, e.g. --set relevance.C=0.3 (repeatable)."
    ),
) -> None:
    """Cross-validate a model's configuration against the reference baseline in the same run."""
    from classifier.evaluation import ablation, compare_with_baseline
    from classifier.pipeline import HEADS, HeadConfig
    from classifier.registry import current_version, read_card

    settings = get_settings()
    data_dir = Path(data_dir) if data_dir else settings.training_data_dir
    models_dir = _models_dir(models_dir)
    version = version or current_version(models_dir)
    card = read_card(models_dir, version)
    configs = {h: HeadConfig.from_dict(card["heads"][h]["config"]) for h in HEADS}
    try:
        configs = apply_overrides(configs, overrides or [])
    except ValueError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    heads = tuple(head) if head else HEADS
    unknown = set(heads) - set(HEADS)
    if unknown:
        errors.print(f"[red]unknown head(s): {sorted(unknown)}[/red]")
        raise typer.Exit(2)
    output_dir = Path(output_dir) if output_dir else settings.data_dir / "evaluation" / version
    changed = f" with {', '.join(overrides)}" if overrides else ""
    console.print(
        f"evaluating the configuration of model [bold]{version}[/bold]{escape(changed)} on {escape(str(data_dir))}"
    )
    with _progress() as progress:
        report = compare_with_baseline(
            data_dir=data_dir,
            configs=configs,
            heads=heads,
            folds=folds,
            output_dir=output_dir,
            progress=_Bars(progress),
            seeds=tuple(seed or (0,)),
            version=version,
        )
        if overrides:
            report["overrides"] = list(overrides)
        if with_ablation:
            report["ablation"] = ablation(
                data_dir=data_dir, configs=configs, heads=heads, folds=folds, progress=_Bars(progress)
            )
        if overrides or with_ablation:  # compare_with_baseline wrote the rest already
            (output_dir / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    table = Table("head", "baseline macro-F1", "model macro-F1", "ratio", "baseline acc", "model acc")
    for name, row in report["heads"].items():
        table.add_row(
            name,
            f"{row['baseline']['macro_f1']:.4f}",
            f"{row['model']['macro_f1']:.4f}",
            f"{row['macro_f1_ratio']:.3f}",
            f"{row['baseline']['accuracy']:.4f}",
            f"{row['model']['accuracy']:.4f}",
        )
    console.print(table)
    repeated = {name: row["repeated"] for name, row in report["heads"].items() if "repeated" in row}
    if repeated:
        table = Table("head", "seeds", "baseline mean", "model mean", "ratio of means", "model per seed")
        for name, row in repeated.items():
            table.add_row(
                name,
                str(len(row["model_macro_f1"])),
                f"{row['baseline_mean']:.4f}",
                f"{row['model_mean']:.4f}",
                f"{row['ratio_of_means']:.3f}",
                " ".join(f"{v:.4f}" for v in row["model_macro_f1"]),
            )
        console.print(table)
    if with_ablation:
        for name, rows in report["ablation"].items():
            console.print(f"[bold]{name}[/bold] ablation (delta macro-F1 when the step is flipped):")
            for step, value in rows.items():
                if isinstance(value, dict):
                    console.print(f"  {step:<18} {value['macro_f1']:.4f} ({value['delta']:+.4f})")
    console.print(f"report and confusion matrices in {output_dir}")


def apply_overrides(configs: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Head configurations with ``head.field=value`` changes (values are Python/JSON literals).

    Raises ValueError naming the problem for an unknown head or field or an unreadable value.
    """
    import ast
    import dataclasses

    changed = dict(configs)
    for item in overrides:
        target, sep, raw_value = item.partition("=")
        head_name, dot, field_name = target.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set {item!r}: expected head.field=value, e.g. relevance.C=0.3")
        if head_name not in changed:
            raise ValueError(f"--set {item!r}: unknown head {head_name!r} (one of {', '.join(changed)})")
        config = changed[head_name]
        if field_name not in {f.name for f in dataclasses.fields(config)}:
            raise ValueError(f"--set {item!r}: {head_name} has no setting {field_name!r}")
        text = raw_value.strip()
        literal = {"true": "True", "false": "False", "null": "None", "none": "None"}.get(text.lower(), text)
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as --set agency.classifier=svm
        if isinstance(value, list):
            value = tuple(value)
        changed[head_name] = dataclasses.replace(config, **{field_name: value})
    return changed


def _read_rows(path: Path) -> Iterator[tuple[str, str]]:
    """(id, text) rows of a CSV, tolerating NUL bytes, bad UTF-8 and huge fields."""
    csv.field_size_limit(MAX_FIELD_BYTES)
    binary = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    try:
        stream = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
        lines = (line.replace("\x00", "\ufffd") for line in stream)  # streamed, never read whole
        reader = csv.DictReader(lines)
        if not reader.fieldnames or "text" not in reader.fieldnames:
            raise typer.BadParameter(
                f"{path} needs a header with columns id,text (found {reader.fieldnames})"
            )
        for row in reader:
            yield (row.get("id") or "").strip()[:200], row.get("text") or ""
    finally:
        if binary is not sys.stdin.buffer:
            binary.close()


def classify(
    input: Path = typer.Option(..., "--input", help="CSV with columns id,text ('-' for stdin)."),
    output: Path = typer.Option(..., "--output", help="CSV to write (id + label and score per head)."),
    models_dir: Path = typer.Option(None, help="Model registry folder (default: JARING_MODELS_DIR)."),
    version: str = typer.Option(None, help="Model version (default: the current model)."),
) -> None:
    """Classify every row of a CSV; unreadable texts get a fallback label with score 0, never a crash."""
    from classifier.registry import load_current, load_model

    models_dir = _models_dir(models_dir)
    if str(input) != "-" and not Path(input).exists():
        raise typer.BadParameter(f"{input} does not exist")
    model = load_model(models_dir, version) if version else load_current(models_dir)
    count = unusable = 0
    with Path(output).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT_COLUMNS)
        batch: list[tuple[str, str]] = []
        for row in _read_rows(Path(input)):
            batch.append(row)
            if len(batch) >= CLASSIFY_BATCH:
                unusable += _write_batch(writer, model, batch)
                count += len(batch)
                batch = []
        if batch:
            unusable += _write_batch(writer, model, batch)
            count += len(batch)
    errors.print(f"classified {count} rows with model {model.version} ({unusable} unusable) → {output}")


def _write_batch(writer: Any, model: Any, batch: list[tuple[str, str]]) -> int:
    predictions = model.predict([text for _, text in batch])
    for (row_id, _), p in zip(batch, predictions, strict=True):
        writer.writerow(
            [
                row_id,
                p.relevance,
                f"{p.relevance_score:.4f}",
                p.topic,
                f"{p.topic_score:.4f}",
                p.agency,
                f"{p.agency_score:.4f}",
            ]
        )
    return sum(1 for p in predictions if p.unusable)


def list_models(models_dir: Path = typer.Option(None, help="Model registry folder.")) -> None:
    """Every saved version with its cross-validated macro-F1 per head; * marks the current one."""
    from classifier.registry import ModelNotFoundError, current_version, cv_macro_f1, list_versions, read_card

    models_dir = _models_dir(models_dir)
    try:
        live = current_version(models_dir)
    except ModelNotFoundError:
        live = ""
    table = Table("", "version", "relevance", "topic", "agency", "reviews", "MB")
    for version in list_versions(models_dir):
        card = read_card(models_dir, version)
        f1 = cv_macro_f1(card)
        table.add_row(
            "*" if version == live else "",
            version,
            *(f"{f1[h]:.4f}" if h in f1 else "-" for h in ("relevance", "topic", "agency")),
            str(card.get("data", {}).get("reviews_used", 0)),
            f"{card.get('model_file_bytes', 0) / 1e6:.1f}",
        )
    console.print(table)


def show_model(
    version: str = typer.Argument(None, help="Version (default: the current one)."),
    models_dir: Path = typer.Option(None, help="Model registry folder."),
) -> None:
    """Print a model card: data and hashes, label sets, metrics, library versions."""
    from classifier.registry import current_version, read_card

    models_dir = _models_dir(models_dir)
    card = read_card(models_dir, version or current_version(models_dir))
    summary = dict(card)
    summary["metrics"] = {
        "cv": {
            h: {k: m[k] for k in ("macro_f1", "accuracy", "n", "per_class")}
            for h, m in card["metrics"]["cv"].items()
        },
        **{k: v for k, v in card["metrics"].items() if k != "cv"},
    }
    console.print_json(json.dumps(summary, default=str))


def promote_model(
    version: str = typer.Argument(..., help="Version to make current."),
    force: bool = typer.Option(False, "--force", help="Promote even if worse on some head."),
    models_dir: Path = typer.Option(None, help="Model registry folder."),
) -> None:
    """Make a version current; refused if its CV macro-F1 is below the current model's on any head.

    Both versions' own `jaring evaluate` reports (models/VERSION/evaluation/) are compared, mean over the
    fold shuffles both measured, when they exist; otherwise the single-shuffle CV of the model cards.
    """
    from classifier.registry import ModelNotFoundError, PromotionRefused, promote

    models_dir = _models_dir(models_dir)
    try:
        comparisons = promote(models_dir, version, force=force)
    except PromotionRefused as exc:
        errors.print(f"[red]refused to promote {version}:[/red]")
        for reason in exc.reasons:
            errors.print(f"  - {reason}")
        errors.print("use --force to promote anyway")
        raise typer.Exit(1) from exc
    except ModelNotFoundError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if comparisons:
        table = Table("head", "compared on", version, "previous")
        for row in comparisons:
            table.add_row(
                row.head,
                row.basis,
                *(f"{v:.4f}" if v is not None else "-" for v in (row.candidate, row.live)),
            )
        console.print(table)
    for row in comparisons:
        if row.reason:
            errors.print(f"[yellow]forced despite:[/yellow] {row.reason}")
    console.print(f"[green]{version} is now the current model[/green]")


def rollback_model(models_dir: Path = typer.Option(None, help="Model registry folder.")) -> None:
    """Make the previously promoted version current again."""
    from classifier.registry import ModelNotFoundError, rollback

    try:
        target = rollback(_models_dir(models_dir))
    except ModelNotFoundError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]rolled back to {target}[/green]")
