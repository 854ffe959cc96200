"""Model registry: skops round trip, trusted types only, promote/rollback, hot reload."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio

from classifier import registry
from classifier.labels import LABELS
from classifier.registry import (
    LoadedModel,
    ModelCache,
    ModelNotFoundError,
    PromotionRefused,
    UntrustedModelError,
    current_version,
    load_current,
    load_model,
    promote,
    rollback,
    save_model,
    set_current,
)
from classifier.training import train_model
from tests.classifier.conftest import SHIPPED_MODELS


class Evil:
    """A type no model file may contain."""

    def __init__(self) -> None:
        self.payload = "would run on load"


@pytest.fixture
def tiny_trained(tiny_data_dir: Path) -> tuple[dict, dict]:
    return train_model(data_dir=tiny_data_dir, cv_folds=2)


@pytest.fixture
def tiny_loaded(tmp_path: Path, tiny_trained: tuple[dict, dict]) -> LoadedModel:
    """``tiny_trained`` saved as version ``v1`` in ``tmp_path`` and loaded back."""
    heads, card = tiny_trained
    _save(tmp_path, "v1", heads, card)
    return load_model(tmp_path, "v1")


def _save(models_dir: Path, version: str, heads: dict, card: dict, f1: dict[str, float] | None = None) -> None:
    card = json.loads(json.dumps(card, default=str))
    if f1 is not None:
        for head, value in f1.items():
            card["metrics"]["cv"][head]["macro_f1"] = value
    save_model(models_dir, version, heads, card)


def test_skops_round_trip_gives_identical_predictions(
    tmp_path: Path, tiny_trained: tuple[dict, dict], tiny_loaded: LoadedModel
) -> None:
    heads, _ = tiny_trained
    loaded = tiny_loaded
    texts = ["jalan rusak berlubang di oebobo", "terima kasih atas undangannya", "ktp saya belum jadi"]
    for head, pipe in heads.items():
        np.testing.assert_array_equal(pipe.predict(texts), loaded.heads[head].predict(texts))
    assert loaded.card["data"]["files_sha256"].keys() == {"tweets_bandung.csv", "lapor_reports.csv"}
    assert set(loaded.card["libraries"]) >= {"scikit-learn", "skops", "numpy", "Sastrawi"}
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.joblib"))


def test_model_files_only_use_the_allow_listed_types(tmp_path: Path, tiny_trained: tuple[dict, dict]) -> None:
    heads, card = tiny_trained
    _save(tmp_path, "v1", heads, card)
    assert set(sio.get_untrusted_types(file=tmp_path / "v1" / registry.MODEL_FILE)) <= set(registry.TRUSTED_TYPES)


def test_a_file_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.skops"
    sio.dump({"relevance": Evil()}, path)
    with pytest.raises(UntrustedModelError, match="Evil"):
        registry.load_heads(path)


def test_predict_and_explain_contract(tmp_path: Path, tiny_trained: tuple[dict, dict]) -> None:
    heads, card = tiny_trained
    _save(tmp_path, "v1", heads, card)
    set_current(tmp_path, "v1")
    model = load_current(tmp_path)
    assert model.version == "v1"
    texts = ["sampah numpuk di maulafa bau banget", "", "\x00\x01\x02" * 50]
    first, empty, binary = model.predict(texts)
    assert first.relevance == "keluhan" and first.topic == "sampah"
    assert first.agency in LABELS["agency"]
    assert 0 < first.relevance_score <= 1
    assert abs(sum(first.scores["relevance"].values()) - 1) < 1e-3
    assert (empty.unusable, empty.relevance_score, empty.relevance) == ("kosong", 0.0, "bukan")
    assert binary.unusable == "biner" and binary.topic_score == 0.0
    explanation = model.explain("sampah numpuk di maulafa bau banget", top_n=3)
    assert set(explanation) == {"relevance", "topic", "agency"}
    assert any("sampah" in term for term, _ in explanation["topic"])
    assert all(len(terms) <= 3 and all(w > 0 for _, w in terms) for terms in explanation.values())
    assert model.explain("") == {"relevance": [], "topic": [], "agency": []}
    # The agency head's keyword block explains itself with the keywords it found, not a column name.
    agency_terms = dict(model.explain("jembatan putus dan jalan berlubang di oebobo")["agency"])
    assert agency_terms["jembatan, jalan berlubang [PUPR]"] > 0


def test_promote_refuses_a_worse_model_and_says_why(tmp_path: Path, tiny_trained: tuple[dict, dict]) -> None:
    heads, card = tiny_trained
    _save(tmp_path, "v1", heads, card, {"relevance": 0.90, "topic": 0.80, "agency": 0.70})
    _save(tmp_path, "v2", heads, card, {"relevance": 0.95, "topic": 0.79, "agency": 0.75})
    promote(tmp_path, "v1")
    with pytest.raises(PromotionRefused) as refused:
        promote(tmp_path, "v2")
    assert refused.value.reasons == ["topic: cross-validated macro-F1 0.7900 is below the current v1's 0.8000"]
    assert current_version(tmp_path) == "v1"
    forced = promote(tmp_path, "v2", force=True)
    assert [c.reason for c in forced if c.reason] == refused.value.reasons
    assert [(c.head, c.candidate, c.live) for c in forced] == [
        ("relevance", 0.95, 0.90),
        ("topic", 0.79, 0.80),
        ("agency", 0.75, 0.70),
    ]
    assert current_version(tmp_path) == "v2"
    assert rollback(tmp_path) == "v1"
    assert current_version(tmp_path) == "v1"


def _evaluation(
    models_dir: Path,
    version: str,
    by_seed: dict[str, list[float]],
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    folds: int = 5,
    data: str = "aa11",
    **extra: Any,
) -> None:
    """Write a ``jaring evaluate`` report of ``version`` (its card's configs) with these per-seed macro-F1."""
    card = json.loads((models_dir / version / "model_card.json").read_text())
    heads = {
        head: {
            "model": {"macro_f1": values[0]},
            "repeated": {"model_macro_f1": values},
            "config": card["heads"][head]["config"],
        }
        for head, values in by_seed.items()
    }
    report = {
        "version": version,
        "folds": folds,
        "seeds": list(seeds),
        "data": {"files_sha256": {"tweets_bandung.csv": data}},
        "heads": heads,
        **extra,
    }
    (models_dir / version / "evaluation").mkdir()
    (models_dir / version / "evaluation" / "evaluation.json").write_text(json.dumps(report))


def _live_and_candidate(models_dir: Path, trained: tuple[dict, dict], live: float, candidate: float) -> None:
    """v1 (current) and v2, level on topic and agency; their cards' relevance CV as given."""
    heads, card = trained
    _save(models_dir, "v1", heads, card, {"relevance": live, "topic": 0.70, "agency": 0.68})
    _save(models_dir, "v2", heads, card, {"relevance": candidate, "topic": 0.70, "agency": 0.68})
    promote(models_dir, "v1")


def test_promote_compares_both_evaluations_over_their_shared_seeds(
    tmp_path: Path, tiny_trained: tuple[dict, dict]
) -> None:
    # On the cards' single shuffle v2 looks worse on relevance; over three shuffles it is better.
    _live_and_candidate(tmp_path, tiny_trained, 0.855, 0.854)
    _evaluation(tmp_path, "v1", {"relevance": [0.855, 0.850, 0.850, 0.9]}, seeds=(0, 1, 2, 7))
    _evaluation(tmp_path, "v2", {"relevance": [0.854, 0.852, 0.853]})
    comparisons = promote(tmp_path, "v2")
    assert current_version(tmp_path) == "v2"
    relevance, topic, agency = comparisons
    # Seed 7 is in v1's report only, so the means are over seeds 0, 1 and 2.
    assert relevance.basis == "mean of grouped 5-fold CV over seeds 0, 1, 2 (jaring evaluate)"
    assert (round(relevance.candidate, 4), round(relevance.live, 4), relevance.reason) == (0.853, 0.8517, "")
    assert (topic.basis, topic.candidate, topic.live) == ("model card CV (one shuffle)", 0.70, 0.70)
    assert agency.basis == "model card CV (one shuffle)"


def test_promote_refuses_on_the_mean_over_seeds_and_names_them(
    tmp_path: Path, tiny_trained: tuple[dict, dict]
) -> None:
    _live_and_candidate(tmp_path, tiny_trained, 0.85, 0.86)
    _evaluation(tmp_path, "v1", {"relevance": [0.85, 0.86]}, seeds=(0, 1), folds=2)
    _evaluation(tmp_path, "v2", {"relevance": [0.86, 0.84]}, seeds=(0, 1), folds=2)
    with pytest.raises(PromotionRefused) as refused:
        promote(tmp_path, "v2")
    assert refused.value.reasons == [
        "relevance: mean of grouped 2-fold CV over seeds 0, 1 (jaring evaluate) 0.8500 is below the current v1's 0.8550"
    ]
    assert current_version(tmp_path) == "v1"


@pytest.mark.parametrize("mismatch", ["overrides", "config", "data", "folds", "seeds", "missing", "not a report"])
def test_promote_falls_back_to_the_cards_when_evaluations_do_not_measure_the_same_thing(
    tmp_path: Path, tiny_trained: tuple[dict, dict], mismatch: str
) -> None:
    _live_and_candidate(tmp_path, tiny_trained, 0.85, 0.84)
    _evaluation(tmp_path, "v1", {"relevance": [0.80, 0.80]}, seeds=(0, 1))
    options: dict[str, Any] = {
        "overrides": {"overrides": ["relevance.C=9"]},  # it measured a variant, not v2
        "data": {"data": "bb22"},
        "folds": {"folds": 10},
        "seeds": {"seeds": (3, 4)},
    }.get(mismatch, {})
    if mismatch != "missing":
        _evaluation(tmp_path, "v2", {"relevance": [0.90, 0.90]}, **{"seeds": (0, 1), **options})
    if mismatch == "not a report":
        (tmp_path / "v2" / "evaluation" / "evaluation.json").write_text("[1, 2]")
    if mismatch == "config":
        path = tmp_path / "v2" / "evaluation" / "evaluation.json"
        report = json.loads(path.read_text())
        report["heads"]["relevance"]["config"]["C"] = 9.0
        path.write_text(json.dumps(report))
    with pytest.raises(PromotionRefused) as refused:
        promote(tmp_path, "v2")
    assert refused.value.reasons == [
        "relevance: cross-validated macro-F1 0.8400 is below the current v1's 0.8500"
    ]


def test_rollback_passes_over_versions_whose_model_file_is_gone(tmp_path: Path, tiny_trained: tuple[dict, dict]) -> None:
    heads, card = tiny_trained
    for n, version in enumerate(("v1", "v2", "v3")):
        _save(tmp_path, version, heads, card, {"relevance": 0.5 + n / 10, "topic": 0.5, "agency": 0.5})
        promote(tmp_path, version)
    (tmp_path / "v2" / "model.skops").unlink()  # an old version kept only as its card and evaluation
    assert rollback(tmp_path) == "v1"
    assert load_current(tmp_path).version == "v1"
    (tmp_path / "v3" / "model.skops").unlink()
    with pytest.raises(ModelNotFoundError, match="no earlier promoted version with a model file"):
        rollback(tmp_path)


def test_workers_pick_up_a_promoted_model_without_restart(tmp_path: Path, tiny_trained: tuple[dict, dict]) -> None:
    heads, card = tiny_trained
    _save(tmp_path, "v1", heads, card, {"relevance": 0.5, "topic": 0.5, "agency": 0.5})
    _save(tmp_path, "v2", heads, card, {"relevance": 0.6, "topic": 0.6, "agency": 0.6})
    promote(tmp_path, "v1")
    cache = ModelCache(tmp_path)
    first = cache.get()
    assert first.version == "v1" and cache.get() is first  # no reload while CURRENT is unchanged
    promote(tmp_path, "v2")
    assert cache.get().version == "v2"


def test_shipped_model_predictions_match_its_pipelines(shipped_model) -> None:
    # (Since model 20261128-064813, "jalan di depan pasar oebobo rusak parah" is ketertiban_kebersihan,
    # 0.41 vs 0.36: "pasar" complaints in the tweets are mostly K3. Its topic CV is +0.02 on every seed.)
    texts = ["jalan rusak parah di oebobo", "terima kasih pak wali", "ktp saya belum jadi sudah 3 bulan"]
    predictions = shipped_model.predict(texts)
    for head, pipe in shipped_model.heads.items():
        assert [getattr(p, head) for p in predictions] == list(pipe.predict(texts))
    assert predictions[0].relevance == "keluhan" and predictions[0].topic == "infrastruktur"
    assert predictions[2].agency == "DUKCAPIL"


def test_the_current_shipped_model_carries_an_evaluation_the_promotion_guard_reads() -> None:
    """A candidate is compared with the shipped model over three fold shuffles, not its card's one."""
    evaluated = registry.evaluated_macro_f1(SHIPPED_MODELS, current_version(SHIPPED_MODELS))
    assert set(evaluated) == {"relevance", "topic", "agency"}
    for head, row in evaluated.items():
        assert sorted(row["by_seed"]) == [0, 1, 2] and row["folds"] == 5, head
        assert set(row["data"]) == {"tweets_bandung.csv", "lapor_reports.csv"}


def _spy_on_keyword_counting(monkeypatch: pytest.MonkeyPatch, observe: Callable[[list[str]], Any]) -> list[Any]:
    """Wrap ``KeywordFeatures.transform``: each call appends ``observe(X)`` to the returned list."""
    from classifier.keywords import KeywordFeatures

    seen: list[Any] = []
    original = KeywordFeatures.transform

    def spy(self: KeywordFeatures, X: list[str]) -> object:
        seen.append(observe(X))
        return original(self, X)

    monkeypatch.setattr(KeywordFeatures, "transform", spy)
    return seen


def test_heads_with_the_same_keywords_count_them_once_per_batch(tiny_loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_loaded
    with_keywords = [h for h, p in model.heads.items() if "keywords" in p.named_steps["features"].named_transformers]
    assert with_keywords == ["topic", "agency"]  # default_configs() gives both heads the keyword block
    texts = ["jembatan putus di oebobo", "ktp saya belum jadi", "sampah numpuk di tps"]
    expected = {h: p.predict_proba(texts) for h, p in model.heads.items()}
    calls = _spy_on_keyword_counting(monkeypatch, lambda X: len(X))
    result = model.predict_proba(texts)
    assert calls == [3]
    for head, (_, matrix) in result.items():  # and sharing changes nothing
        np.testing.assert_allclose(matrix, expected[head], rtol=1e-5)


def test_the_garbage_collector_pauses_during_a_batch_and_comes_back_as_it_was(tiny_loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    model = tiny_loaded
    seen = _spy_on_keyword_counting(monkeypatch, lambda X: gc.isenabled())
    assert gc.isenabled()
    model.predict(["jembatan putus di oebobo", ""])
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        model.predict(["ktp saya belum jadi"])
        assert not gc.isenabled()  # an application that turned it off keeps it off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), registry.no_gc_pauses():
        raise RuntimeError("a failed batch")
    assert gc.isenabled()


def test_explain_uses_weights_cached_at_load(tiny_loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier.pipeline import linear_weights

    model = tiny_loaded
    for head, pipe in model.heads.items():
        classes, coef = linear_weights(pipe.named_steps["model"])
        cached_classes, cached_coef = model._weights[head]
        assert list(cached_classes) == list(classes)
        np.testing.assert_array_equal(cached_coef, coef)
    text = "sampah numpuk di maulafa bau banget"
    first = model.explain(text, top_n=4)
    # Explaining never recomputes the weights (that cost ~0.1 s per call for calibrated models).
    def fail(model: object) -> None:
        raise AssertionError("linear_weights called during explain")

    monkeypatch.setattr(registry, "linear_weights", fail)
    assert model.explain(text, top_n=4) == first
    topic_terms = [term for term, _ in first["topic"]]
    assert any("sampah" in term for term in topic_terms)


def test_explain_splits_the_embedding_block_into_the_words_of_the_post(shipped_model) -> None:
    from classifier.embeddings import DocumentEmbedding

    text = "tanah longsor menutup jalan dan rumah warga di kelurahan oebobo"
    pipe = shipped_model.heads["agency"]
    blocks = pipe.named_steps["features"]
    assert isinstance(dict(blocks.transformer_list)["embedding"], DocumentEmbedding)  # the shipped agency head has one
    normalised = shipped_model._normalised([text])["agency"]
    features = registry._transform(blocks, normalised).tocsr()
    classes, coef = shipped_model._weights["agency"]
    label = int(np.argmax(shipped_model.predict_proba([text])["agency"][1][0]))
    names = shipped_model._names("agency")
    row = dict(zip(features.indices, features.data * coef[label, features.indices], strict=True))
    block = sum(v for j, v in row.items() if str(names[j]).startswith("embedding__"))
    shares = shipped_model._embedding_shares("agency", blocks, normalised[0], coef[label])
    assert shares and sum(shares.values()) == pytest.approx(block, rel=1e-4, abs=1e-6)
    # Every shown word carries its word-block weight plus its share of the embedding block.
    by_word = {str(names[j]).removeprefix("word__"): v for j, v in row.items() if str(names[j]).startswith("word__")}
    terms: dict[str, float] = {}
    for term, weight in shipped_model.explain(text, top_n=100)["agency"]:
        terms.setdefault(term, weight)  # word terms come first; a char n-gram may repeat a word's spelling
    assert not any(term.startswith("dim") for term in terms)
    for word, share in shares.items():
        total = share + by_word.get(word, 0.0)
        if total > 0:
            assert terms[word] == pytest.approx(total, abs=1e-4)
