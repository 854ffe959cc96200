"""Model registry: one folder per version under ``models/``, ``models/CURRENT`` names the live one.

Each version folder holds ``model.skops`` (the three head pipelines, saved with skops, loaded only with
an explicit list of trusted types, never pickle) and ``model_card.json`` (data and its sha256, label
sets, metrics, library versions, date). ``current_version()`` reads one small file, so a worker can
call it before each batch and reload when an analyst promotes another model (see :class:`ModelCache`).
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from classifier.embeddings import DocumentEmbedding
from classifier.guard import unusable_reason
from classifier.keywords import KeywordFeatures
from classifier.labels import FALLBACK_LABELS
from classifier.normalize import TextNormalizer, normalize_many
from classifier.pipeline import HEADS, HeadConfig, linear_weights, predict_scores

MODEL_FILE = "model.skops"
CARD_FILE = "model_card.json"
CURRENT_FILE = "CURRENT"
HISTORY_FILE = "HISTORY"

# Every type a Jaring model file may contain. Anything else in a file is refused before loading.
TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.str",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.NoneType",
    "builtins.slice",
    "classifier.normalize.TextNormalizer",
    "classifier.normalize.IdentityText",
    "numpy.dtype",
    "numpy.float32",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "classifier.pipeline.CompactTfidfVectorizer",
    "classifier.pipeline.RawTextTfidfVectorizer",
    "classifier.pipeline.TemperatureCalibratedClassifier",
    "classifier.pipeline.LinearEnsembleClassifier",
    "classifier.keywords.KeywordFeatures",
    "classifier.embeddings.DocumentEmbedding",
    "classifier.shape.PostShape",
    "sklearn.linear_model._ridge.RidgeClassifier",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.svm._classes.LinearSVC",
)


# How explain() names a PostShape length bin on the review screen (``words:15-19`` -> "[panjang 15-19 kata]").
SHAPE_LENGTHS = {"words": "kata", "chars": "karakter"}


class UntrustedModelError(RuntimeError):
    """A model file contains types outside :data:`TRUSTED_TYPES`; it was not loaded."""


class ModelNotFoundError(FileNotFoundError):
    """No such model version (or no CURRENT)."""


@dataclass(frozen=True)
class Prediction:
    """Labels and calibrated scores for one text; ``unusable`` says why the text was not classified."""

    relevance: str
    relevance_score: float
    topic: str
    topic_score: float
    agency: str
    agency_score: float
    scores: dict[str, dict[str, float]]
    unusable: str = ""


def unusable_prediction(reason: str) -> Prediction:
    """A clearly-labelled, zero-confidence prediction for input the model cannot read."""
    return Prediction(
        relevance=FALLBACK_LABELS["relevance"],
        relevance_score=0.0,
        topic=FALLBACK_LABELS["topic"],
        topic_score=0.0,
        agency=FALLBACK_LABELS["agency"],
        agency_score=0.0,
        scores={head: {FALLBACK_LABELS[head]: 0.0} for head in HEADS},
        unusable=reason,
    )


def _transform(features: Any, texts: list[str], shared: dict[Any, Any] | None = None) -> Any:
    """A FeatureUnion's output without its joblib dispatch (~1 ms per call saved on single texts).

    ``shared`` holds blocks that read only the raw post (keyword counts) across the heads of one batch,
    so two heads with the same keywords count them once.
    """
    parts = getattr(features, "transformer_list", None)
    if parts is None:
        return features.transform(texts)
    weights = features.transformer_weights or {}
    blocks = []
    for name, transformer in parts:
        if transformer in ("drop", None):
            continue
        if shared is not None and isinstance(transformer, KeywordFeatures):
            key = transformer.cache_key()
            if key not in shared:
                shared[key] = transformer.transform(texts)
            block = shared[key]
        else:
            block = transformer.transform(texts)
        blocks.append(block * weights[name] if weights.get(name, 1.0) != 1.0 else block)
    return sparse.hstack(blocks, format="csr")


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector for one batch prediction.

    A batch allocates hundreds of thousands of short-lived lists and tuples (tokens, n-grams, cache
    entries); none form reference cycles, but each allocation burst triggers collections that walk the
    model's caches: 8 alternating runs of 3,000 fresh posts gave ×1.18 posts/s with it paused.
    Reference counting still frees everything at once; the collector resumes after the batch (unless
    it was off before: the previous state is restored, so nested and concurrent batches are safe).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class LoadedModel:
    """The three head pipelines of one version, ready to predict and explain."""

    def __init__(self, version: str, heads: dict[str, Any], card: dict[str, Any] | None = None) -> None:
        self.version = version
        self.heads = heads
        self.card = card or {}
        self._feature_names: dict[str, np.ndarray] = {}
        self._embedding_cols: dict[str, np.ndarray] = {}
        # (classes, coefficient matrix) per head, computed once: averaging calibrated coefficient
        # matrices on every explain() call cost ~0.1 s, and the classify stage explains every complaint.
        self._weights: dict[str, tuple[np.ndarray, np.ndarray]] = {
            head: linear_weights(pipe.named_steps["model"]) for head, pipe in heads.items()
        }
        self._lock = threading.Lock()

    def _normalised(self, texts: list[str]) -> dict[str, list[str]]:
        """Normalised texts per head, computing each distinct normaliser only once."""
        by_key: dict[Any, list[str]] = {}
        pending: dict[Any, dict[str, Any]] = {}
        for pipe in self.heads.values():
            normalizer = pipe.steps[0][1]
            key = normalizer.cache_key()
            if key in by_key or key in pending:
                continue
            if isinstance(normalizer, TextNormalizer):
                pending[key] = normalizer.get_params()  # done together below
            else:
                by_key[key] = normalizer.transform(texts)
        if pending:
            for key, result in zip(pending, normalize_many(texts, list(pending.values())), strict=True):
                by_key[key] = result
        return {head: by_key[pipe.steps[0][1].cache_key()] for head, pipe in self.heads.items()}

    def predict_proba(self, texts: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """head → (classes, probability matrix) for texts assumed usable."""
        with no_gc_pauses():
            normalised = self._normalised(list(texts))
            result = {}
            shared: dict[Any, Any] = {}
            for head, pipe in self.heads.items():
                features = _transform(pipe.named_steps["features"], normalised[head], shared)
                model = pipe.named_steps["model"]
                result[head] = (np.asarray(model.classes_), predict_scores(model, features))
        return result

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text; unusable texts get a zero-score fallback, never an exception."""
        texts = list(texts)
        reasons = [unusable_reason(t) for t in texts]
        usable = [i for i, r in enumerate(reasons) if not r]
        predictions: list[Prediction | None] = [None] * len(texts)
        with no_gc_pauses():  # the Prediction objects are allocated in bulk too
            if usable:
                probs = self.predict_proba([texts[i] for i in usable])
                tables = {
                    head: ([str(c) for c in classes], matrix.argmax(axis=1).tolist(), matrix.tolist(),
                           np.round(matrix, 4).tolist())
                    for head, (classes, matrix) in probs.items()
                }
                for row, i in enumerate(usable):
                    labels: dict[str, tuple[str, float]] = {}
                    scores: dict[str, dict[str, float]] = {}
                    for head, (names, best, exact, rounded) in tables.items():
                        labels[head] = (names[best[row]], exact[row][best[row]])
                        scores[head] = dict(zip(names, rounded[row], strict=True))
                    predictions[i] = Prediction(
                        relevance=labels["relevance"][0],
                        relevance_score=labels["relevance"][1],
                        topic=labels["topic"][0],
                        topic_score=labels["topic"][1],
                        agency=labels["agency"][0],
                        agency_score=labels["agency"][1],
                        scores=scores,
                    )
        for i, reason in enumerate(reasons):
            if reason:
                predictions[i] = unusable_prediction(reason)
        return [p for p in predictions if p is not None]

    def _names(self, head: str) -> np.ndarray:
        with self._lock:
            if head not in self._feature_names:
                names = self.heads[head].named_steps["features"].get_feature_names_out()
                self._feature_names[head] = np.asarray(names)
            return self._feature_names[head]

    def explain(self, text: str, top_n: int = 5) -> dict[str, list[tuple[str, float]]]:
        """head → the terms that pushed the predicted label most (words first, then char n-grams and length bins)."""
        if unusable_reason(text):
            return {head: [] for head in HEADS}
        normalised = self._normalised([text])
        explanation: dict[str, list[tuple[str, float]]] = {}
        shared: dict[Any, Any] = {}
        for head, pipe in self.heads.items():
            features = _transform(pipe.named_steps["features"], normalised[head], shared).tocsr()
            model = pipe.named_steps["model"]
            classes, coef = self._weights[head]
            dist = predict_scores(model, features)[0]
            label_row = int(np.argmax(dist))
            idx = features.indices
            contributions = features.data * coef[label_row, idx]
            names = self._names(head)[idx]
            blocks = pipe.named_steps["features"]
            # word term → contribution; a word's pull through its learned vector joins its own entry
            word_terms: dict[str, float] = self._embedding_shares(head, blocks, normalised[head][0], coef[label_row])
            chars: list[tuple[str, float]] = []
            for j in np.argsort(-contributions):
                kind, _, term = str(names[j]).partition("__")
                if kind == "embedding":
                    continue  # split into its words above
                if kind == "keywords":  # a function's keyword count: show the keywords found
                    function = term.partition(":")[2]
                    found = blocks.named_transformers["keywords"].matches(normalised[head][0])
                    term = f"{', '.join(found.get(function, []))} [{function}]"
                if kind == "shape":  # an opening/closing word joins the word's entry; a length bin shows as one
                    position, _, value = term.partition(":")
                    if position in SHAPE_LENGTHS:
                        term = f"[panjang {value} {SHAPE_LENGTHS[position]}]"
                    else:
                        kind, term = "word", value
                if kind in ("word", "keywords"):  # net of both signs: a word shows what it adds in total
                    word_terms[term.strip()] = word_terms.get(term.strip(), 0.0) + float(contributions[j])
                elif contributions[j] > 0:
                    chars.append((term.strip(), round(float(contributions[j]), 4)))
            words = [(t, round(v, 4)) for t, v in sorted(word_terms.items(), key=lambda kv: -kv[1]) if v > 0]
            explanation[head] = (words + chars)[:top_n]
        return explanation

    def _embedding_shares(self, head: str, blocks: Any, document: str, coef_row: np.ndarray) -> dict[str, float]:
        """word → its share of the embedding block's contribution to the label's margin (empty without one)."""
        embedding = dict(blocks.transformer_list).get("embedding")
        if not isinstance(embedding, DocumentEmbedding):
            return {}
        columns = self._embedding_columns(head)
        weight = (blocks.transformer_weights or {}).get("embedding", 1.0)
        return embedding.word_contributions(document, coef_row[columns] * weight)

    def _embedding_columns(self, head: str) -> np.ndarray:
        columns = self._embedding_cols.get(head)
        if columns is None:
            names = self._names(head)
            columns = self._embedding_cols[head] = np.asarray(
                [j for j, name in enumerate(names) if str(name).startswith("embedding__")], dtype=np.int64
            )
        return columns


# --- files --------------------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def new_version_name(now: datetime | None = None) -> str:
    """A sortable version name, e.g. ``20261127-223500``."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def save_model(models_dir: Path, version: str, heads: dict[str, Any], card: dict[str, Any]) -> Path:
    """Write ``models/<version>/model.skops`` and its model card; returns the folder."""
    import skops.io as sio

    folder = Path(models_dir) / version
    folder.mkdir(parents=True, exist_ok=False)
    sio.dump(heads, folder / MODEL_FILE, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    card = dict(card)
    card["version"] = version
    card["model_file_bytes"] = (folder / MODEL_FILE).stat().st_size
    _write_atomic(folder / CARD_FILE, json.dumps(card, indent=2, ensure_ascii=False, default=str) + "\n")
    _write_atomic(folder / "MODEL_CARD.md", render_card(card))
    return folder


def render_card(card: dict[str, Any]) -> str:
    """A human-readable summary of a model card (the JSON file is the full record)."""
    lines = [
        f"# Jaring classifier {card.get('version', '')}",
        "",
        f"{card.get('task', '')}. Created {card.get('created_at', '')}.",
        "",
        "## Cross-validated metrics",
        "",
        f"{card.get('metrics', {}).get('cv_method', '')}, {card.get('metrics', {}).get('cv_folds', '')} folds.",
        "",
        "| head | macro-F1 | accuracy | rows |",
        "|---|---|---|---|",
    ]
    for head, metrics in card.get("metrics", {}).get("cv", {}).items():
        lines.append(f"| {head} | {metrics['macro_f1']:.4f} | {metrics['accuracy']:.4f} | {metrics['n']} |")
    lines += ["", "## Training data", ""]
    data = card.get("data", {})
    for name, digest in data.get("files_sha256", {}).items():
        lines.append(f"- `{name}` sha256 `{digest}`")
    for head, info in card.get("heads", {}).items():
        lines.append(f"- {head}: rows by source {info.get('training_rows')}; labels {', '.join(info.get('labels', []))}")
    lines.append(f"- reviewer labels used: {data.get('reviews_used', 0)} {data.get('review_decisions') or ''}")
    lines += ["", "## Sources", ""] + [f"- {c}" for c in data.get("citations", [])]
    lines += ["", "## Libraries", ""] + [f"- {k} {v}" for k, v in card.get("libraries", {}).items()]
    return "\n".join(lines) + "\n"


def check_trusted(path: Path) -> None:
    """Refuse a model file that contains any type not in :data:`TRUSTED_TYPES`."""
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    if untrusted:
        raise UntrustedModelError(f"{path} contains untrusted types: {sorted(untrusted)}")


def load_heads(path: Path) -> dict[str, Any]:
    """Load a skops model file after checking every type in it against the allow-list."""
    import skops.io as sio

    check_trusted(path)
    present = [t for t in sio.get_untrusted_types(file=path) if t in TRUSTED_TYPES]
    return sio.load(path, trusted=present)


def read_card(models_dir: Path, version: str) -> dict[str, Any]:
    """The model card of a version."""
    path = Path(models_dir) / version / CARD_FILE
    if not path.exists():
        raise ModelNotFoundError(f"no model card for version {version!r} in {models_dir}")
    return json.loads(path.read_text(encoding="utf-8"))


def load_model(models_dir: Path, version: str) -> LoadedModel:
    """Load one version."""
    folder = Path(models_dir) / version
    if not (folder / MODEL_FILE).exists():
        raise ModelNotFoundError(f"no model {version!r} in {models_dir}")
    return LoadedModel(version, load_heads(folder / MODEL_FILE), read_card(models_dir, version))


def current_version(models_dir: Path) -> str:
    """The live version's name (reads one small file; cheap enough to call before every batch)."""
    path = Path(models_dir) / CURRENT_FILE
    try:
        version = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{path} does not exist: train and promote a model first") from exc
    if not version:
        raise ModelNotFoundError(f"{path} is empty")
    return version


def load_current(models_dir: Path) -> LoadedModel:
    """Load the version named in ``models/CURRENT``."""
    return load_model(models_dir, current_version(models_dir))


def list_versions(models_dir: Path) -> list[str]:
    """Every version folder that holds a model, oldest first."""
    root = Path(models_dir)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / MODEL_FILE).exists())


def history(models_dir: Path) -> list[str]:
    """Versions that have been CURRENT, in order of promotion."""
    path = Path(models_dir) / HISTORY_FILE
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def set_current(models_dir: Path, version: str, *, reason: str = "promote") -> None:
    """Point CURRENT at ``version`` atomically and append it to HISTORY."""
    root = Path(models_dir)
    if version not in list_versions(root):
        raise ModelNotFoundError(f"no model {version!r} in {root}")
    _write_atomic(root / CURRENT_FILE, version + "\n")
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with (root / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(f"{version} {stamp} {reason}\n")


def cv_macro_f1(card: dict[str, Any]) -> dict[str, float]:
    """head → cross-validated macro-F1 recorded in a model card."""
    metrics = card.get("metrics", {}).get("cv", {})
    return {head: float(m["macro_f1"]) for head, m in metrics.items() if "macro_f1" in m}


EVALUATION_FILE = Path("evaluation") / "evaluation.json"


def evaluated_macro_f1(models_dir: Path, version: str) -> dict[str, dict[str, Any]]:
    """head → the version's own ``jaring evaluate`` figures, when that report measured this very model.

    Read from ``<version>/evaluation/evaluation.json``. A report counts only if it measured the
    configuration in the version's card (no ``--set`` overrides, the same head configs) and names the
    sha256 of its training files. Each head gives ``{"folds", "data", "by_seed": {seed: macro-F1}}``.
    """
    path = Path(models_dir) / version / EVALUATION_FILE
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(report, dict) or report.get("overrides"):
        return {}
    files = (report.get("data") or {}).get("files_sha256")
    if not files:
        return {}
    card_heads = read_card(models_dir, version).get("heads", {})
    seeds = report.get("seeds") or [0]
    out: dict[str, dict[str, Any]] = {}
    for head, row in (report.get("heads") or {}).items():
        if head not in card_heads or not isinstance(row, dict):
            continue
        if HeadConfig.from_dict(row.get("config") or {}) != HeadConfig.from_dict(
            card_heads[head].get("config") or {}
        ):
            continue  # the report measured another configuration than the one this version ships
        values = (row.get("repeated") or {}).get("model_macro_f1") or [row.get("model", {}).get("macro_f1")]
        if len(values) != len(seeds) or any(not isinstance(v, int | float) for v in values):
            continue
        out[head] = {
            "folds": report.get("folds"),
            "data": files,
            "by_seed": dict(zip(seeds, values, strict=True)),
        }
    return out


@dataclass(frozen=True)
class HeadComparison:
    """One head of a promotion check: the candidate's and the live model's macro-F1, and on what basis."""

    head: str
    basis: str
    candidate: float | None
    live: float | None
    reason: str = ""  # why the candidate must not replace the live model on this head ("" if it may)


def _compare_head(
    head: str, candidate: str, live: str, new: dict[str, Any], old: dict[str, Any]
) -> HeadComparison:
    """Compare on the shared seeds of both evaluations when they can be compared, else on the cards' CV."""
    new_eval, old_eval = new["evaluated"].get(head), old["evaluated"].get(head)
    if (
        new_eval
        and old_eval
        and new_eval["folds"] == old_eval["folds"]
        and new_eval["data"] == old_eval["data"]
    ):
        seeds = sorted(set(new_eval["by_seed"]) & set(old_eval["by_seed"]))
        if seeds:
            ours = float(np.mean([new_eval["by_seed"][s] for s in seeds]))
            theirs = float(np.mean([old_eval["by_seed"][s] for s in seeds]))
            basis = f"mean of grouped {new_eval['folds']}-fold CV over seeds {', '.join(map(str, seeds))} (jaring evaluate)"
            reason = (
                f"{head}: {basis} {ours:.4f} is below the current {live}'s {theirs:.4f}"
                if ours < theirs
                else ""
            )
            return HeadComparison(head, basis, ours, theirs, reason)
    basis = "model card CV (one shuffle)"
    ours_card, theirs_card = new["card"].get(head), old["card"].get(head)
    if ours_card is None:
        return HeadComparison(
            head,
            basis,
            None,
            theirs_card,
            f"{head}: {candidate} has no cross-validated macro-F1 in its model card",
        )
    reason = ""
    if theirs_card is not None and ours_card < theirs_card:
        reason = f"{head}: cross-validated macro-F1 {ours_card:.4f} is below the current {live}'s {theirs_card:.4f}"
    return HeadComparison(head, basis, ours_card, theirs_card, reason)


def promotion_check(models_dir: Path, candidate: str) -> list[HeadComparison]:
    """Per head, how ``candidate`` compares with the current model (empty if nothing is current yet).

    The guard prefers the strongest evidence both versions have: when each has a ``jaring evaluate``
    report of itself (see :func:`evaluated_macro_f1`) on the same data and folds, it compares the mean
    macro-F1 over the fold shuffles both measured, because one shuffle moves a head by up to 0.01;
    otherwise the single-shuffle CV in the model cards.
    """
    try:
        live = current_version(models_dir)
    except ModelNotFoundError:
        return []
    if live == candidate:
        raise PromotionRefused([f"{candidate} is already the current model"])
    evidence = {
        version: {
            "card": cv_macro_f1(read_card(models_dir, version)),
            "evaluated": evaluated_macro_f1(models_dir, version),
        }
        for version in (candidate, live)
    }
    return [_compare_head(head, candidate, live, evidence[candidate], evidence[live]) for head in HEADS]


def promote(models_dir: Path, version: str, *, force: bool = False) -> list[HeadComparison]:
    """Make ``version`` current unless it is worse on some head; returns the comparison per head.

    Refusal raises :class:`PromotionRefused` with every reason; with ``force`` the version is promoted
    anyway and the comparisons that would have refused it keep their ``reason``.
    """
    try:
        comparisons = promotion_check(models_dir, version)
        blockers = [c.reason for c in comparisons if c.reason]
    except PromotionRefused as refused:  # already current: nothing to compare
        comparisons, blockers = [], refused.reasons
    if blockers and not force:
        raise PromotionRefused(blockers)
    set_current(models_dir, version, reason="promote --force" if blockers else "promote")
    return comparisons


def rollback(models_dir: Path) -> str:
    """Make the latest earlier promoted version that still has its model file current again; returns it.

    The repository keeps only small model files of old versions (their cards and evaluations stay), so a
    version whose ``model.skops`` is gone is passed over rather than made current and unloadable.
    """
    live = current_version(models_dir)
    available = set(list_versions(models_dir))
    previous = [v for v in history(models_dir) if v != live and v in available]
    if not previous:
        raise ModelNotFoundError("no earlier promoted version with a model file to roll back to")
    target = previous[-1]
    set_current(models_dir, target, reason=f"rollback from {live}")
    return target


class PromotionRefused(RuntimeError):
    """The candidate model is worse than the current one on at least one head."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass
class ModelCache:
    """Keeps the current model loaded and reloads it when CURRENT changes (workers' hot reload)."""

    models_dir: Path
    _model: LoadedModel | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def get(self) -> LoadedModel:
        """The current model, reloaded if another version has been promoted since the last call."""
        version = current_version(self.models_dir)
        with self._lock:
            if self._model is None or self._model.version != version:
                self._model = load_model(self.models_dir, version)
            return self._model
