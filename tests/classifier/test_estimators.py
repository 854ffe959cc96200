"""The custom estimators follow the scikit-learn contract (so skops can save them without pickle)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from classifier.normalize import IdentityText, TextNormalizer
from classifier.pipeline import (
    CharNgramIndex,
    CompactTfidfVectorizer,
    HeadConfig,
    LinearEnsembleClassifier,
    RawTextTfidfVectorizer,
    TemperatureCalibratedClassifier,
    build_head,
)
from classifier.registry import LoadedModel

TEXTS = ["jalan rusak parah", "lampu jalan mati", "macet total di oebobo", "angkot ngetem", "sampah numpuk",
         "sampah bau sekali", "jalan berlubang", "macet tiap pagi", "sampah belum diangkut"] * 3
LABELS = ["infra", "infra", "macet", "macet", "sampah", "sampah", "infra", "macet", "sampah"] * 3


def _learned(estimator: object) -> set[str]:
    return {k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")}


@pytest.mark.parametrize(
    "estimator", [TextNormalizer(), TextNormalizer(stem=True, kupang=False), TextNormalizer(keep_raw=True), IdentityText()]
)
def test_text_transformers_follow_the_contract(estimator: object) -> None:
    params = estimator.get_params()
    assert _learned(estimator) == set()  # __init__ only stores parameters
    assert clone(estimator).get_params() == params
    assert estimator.fit(TEXTS) is estimator  # fit returns self
    assert _learned(estimator)  # learned attributes end in "_"
    check_is_fitted(estimator)
    out = estimator.transform(TEXTS)
    assert len(out) == len(TEXTS) and all(isinstance(t, str) for t in out)
    assert estimator.get_params() == params  # fit changes no parameter


def test_temperature_calibrated_classifier_follows_the_contract() -> None:
    X = TfidfVectorizer().fit_transform(TEXTS)
    estimator = TemperatureCalibratedClassifier(LinearSVC(class_weight="balanced"), cv=3)
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)
    assert _learned(estimator) == set()
    assert estimator.fit(X, LABELS) is estimator
    assert {"classes_", "temperature_", "estimator_"} <= _learned(estimator)
    proba = estimator.predict_proba(X)
    assert proba.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # Calibration never changes the decision: arg-max of probabilities == predict == best margin.
    assert list(estimator.classes_[proba.argmax(axis=1)]) == list(estimator.predict(X))
    assert estimator.temperature_ > 0
    assert estimator.score(X, LABELS) == 1.0
    assert clone(estimator).get_params()["cv"] == 3


def test_temperature_calibration_survives_a_class_rarer_than_the_folds() -> None:
    X = TfidfVectorizer().fit_transform(TEXTS + ["pungli di kantor"])
    y = LABELS + ["rare"]
    estimator = TemperatureCalibratedClassifier(LinearSVC(), cv=3).fit(X, y)
    assert "rare" in estimator.classes_


def test_compact_vectorizer_state_round_trips_without_a_dict() -> None:
    vectorizer = CompactTfidfVectorizer().fit(TEXTS)
    state = vectorizer.__getstate__()
    assert "vocabulary_" not in state and state["vocabulary_terms_"].dtype.kind == "U"
    restored = CompactTfidfVectorizer()
    restored.__setstate__(state)
    assert restored.vocabulary_ == vectorizer.vocabulary_
    assert (restored.transform(TEXTS) != vectorizer.transform(TEXTS)).nnz == 0


def test_cached_char_wb_transform_matches_scikit_learn() -> None:
    texts = TEXTS + ["kata baru yang belum pernah ada", "jalan  jalan\tdi\noebobo", "", "aaa aaa aaa aa"]
    params = {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True, "dtype": np.float32}
    ours = CompactTfidfVectorizer(**params).fit(TEXTS)
    reference = TfidfVectorizer(**params).fit(TEXTS)
    for _ in range(2):  # second pass goes through the per-word cache
        got, expected = ours.transform(texts), reference.transform(texts)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6)
    assert ours.transform([]).shape == (0, len(ours.vocabulary_))


HOSTILE_TEXTS = [
    "Jalan RUSAK parahhh di Oebobo!!", "kata  baru\tyang\nbelum pernah ada", "", "a", "ÄÖ é 😀😀 x", "nul\x00byte di tengah",
    "x" * 3000, "   spasi   di   mana-mana   ", "\u200b\ufeffzero width", "ﾟ･✿ヾ╲(｡◕‿◕｡)╱✿･ﾟ",
]


@pytest.mark.parametrize("params", [
    {"ngram_range": (2, 5), "sublinear_tf": True, "min_df": 1},
    {"ngram_range": (1, 3), "sublinear_tf": False, "binary": True},
    {"ngram_range": (3, 4), "lowercase": False, "norm": "l1"},
    {"ngram_range": (2, 3), "strip_accents": "unicode"},
])
def test_vectorised_char_ngrams_match_scikit_learn(params: dict) -> None:
    """analyzer="char" (n-grams crossing words) counted with numpy gives scikit-learn's exact matrix."""
    params = {"analyzer": "char", "dtype": np.float32, **params}
    fit_on = TEXTS + HOSTILE_TEXTS[:2]
    ours = CompactTfidfVectorizer(**params).fit(fit_on)
    reference = TfidfVectorizer(**params).fit(fit_on)
    texts = TEXTS + HOSTILE_TEXTS
    for batch in (texts, texts[:1], texts[-3:], [""], ["a", ""], ["", "ab"]):
        got, expected = ours.transform(batch), reference.transform(batch)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6, atol=1e-7)
    assert ours.transform([]).shape == (0, len(ours.vocabulary_))


@pytest.mark.parametrize("params", [
    {"ngram_range": (1, 2), "sublinear_tf": True, "token_pattern": r"(?u)@?\b\w+\b"},  # the heads' setting
    {"ngram_range": (1, 1), "binary": True},
    {"ngram_range": (2, 3), "lowercase": False, "norm": "l1"},
    {"ngram_range": (1, 3), "strip_accents": "unicode", "min_df": 1},
    {"ngram_range": (1, 2), "stop_words": ["di", "yang"]},  # scikit-learn's own path
])
def test_word_ngram_counts_match_scikit_learn(params: dict) -> None:
    params = {"analyzer": "word", "dtype": np.float32, **params}
    fit_on = TEXTS + HOSTILE_TEXTS[:2]
    ours = CompactTfidfVectorizer(**params).fit(fit_on)
    reference = TfidfVectorizer(**params).fit(fit_on)
    texts = TEXTS + HOSTILE_TEXTS + ["jalan jalan jalan rusak rusak", "Jalan RUSAK jalan rusak"]
    for batch in (texts, texts[:1], texts[-3:], [""], ["a", ""]):
        got, expected = ours.transform(batch), reference.transform(batch)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6, atol=1e-7)
    assert ours.transform([]).shape == (0, len(ours.vocabulary_))


@pytest.mark.parametrize("params", [
    {"ngram_range": (2, 5), "sublinear_tf": True, "min_df": 1},
    {"ngram_range": (1, 3), "binary": True},
    {"ngram_range": (4, 6), "lowercase": False},  # padded words shorter than min_n: scikit-learn's own path
    {"ngram_range": (2, 3), "strip_accents": "unicode", "norm": "l1"},
])
def test_new_words_counted_together_give_scikit_learns_char_wb_matrix(params: dict) -> None:
    """char_wb words the cache has not seen are counted as a batch with numpy, identically to scikit-learn."""
    params = {"analyzer": "char_wb", "dtype": np.float32, **params}
    fit_on = TEXTS + HOSTILE_TEXTS[:2]
    reference = TfidfVectorizer(**params).fit(fit_on)
    texts = TEXTS + HOSTILE_TEXTS + ["ab abab ba a b bab", "anana ananas nana"]
    for batches in ([texts], [texts[:3], texts, texts[-4:]], [[""], ["a", ""], ["", "ab"]]):
        ours = CompactTfidfVectorizer(**params).fit(fit_on)  # a cold word cache for each sequence
        for batch in batches:
            got, expected = ours.transform(batch), reference.transform(batch)
            assert got.shape == expected.shape
            np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6, atol=1e-7)
    assert ours.transform([]).shape == (0, len(ours.vocabulary_))


def test_char_ngrams_beyond_64_bit_numbers_use_scikit_learns_path() -> None:
    texts = ["".join(chr(0x4E00 + i + j) for j in range(12)) for i in range(0, 400, 12)]  # 400 distinct characters
    params = {"analyzer": "char", "ngram_range": (1, 8), "dtype": np.float32}
    ours = CompactTfidfVectorizer(**params).fit(texts)
    assert not CharNgramIndex.fits(ours.vocabulary_, (1, 8))  # 402 ** 8 > 2 ** 63
    expected = TfidfVectorizer(**params).fit(texts).transform(texts[:3] + ["x"])
    np.testing.assert_allclose(ours.transform(texts[:3] + ["x"]).toarray(), expected.toarray(), rtol=1e-6)


def test_char_ngram_index_finds_every_term_and_nothing_else() -> None:
    vocabulary = {"ab": 0, "abc": 1, "b c": 2, "😀x": 3, "zz": 4}
    index = CharNgramIndex(vocabulary, (2, 3))
    counts = index.counts(["abc c", "😀x zz", "ab\x00c", "q"], len(vocabulary), np.float64).toarray()
    # "abc c": ab, abc; no "b c" (that needs "b c" in the text); "ab\x00c": the NUL is not a separator.
    np.testing.assert_array_equal(counts, [[1, 1, 0, 0, 0], [0, 0, 0, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    assert index.counts(["ab b cab"], len(vocabulary), np.float64).toarray().tolist() == [[2, 0, 1, 0, 0]]


def test_raw_view_reads_the_text_as_written() -> None:
    normalised = TextNormalizer(keep_raw=True).fit_transform(["Jln rusak parahhh @DinasPU", "gpp sih"])
    assert normalised[0] == TextNormalizer().fit_transform(["Jln rusak parahhh @DinasPU"])[0]
    assert normalised[0].raw == "Jln rusak parahhh @DinasPU"
    raw = RawTextTfidfVectorizer(analyzer="char", ngram_range=(3, 3)).fit(normalised)
    assert "hhh" in raw.vocabulary_ and "jln" in raw.vocabulary_  # the normaliser squeezed and expanded these
    plain = RawTextTfidfVectorizer(analyzer="char", ngram_range=(3, 3)).fit(["Jln rusak parahhh @DinasPU", "gpp sih"])
    assert plain.vocabulary_ == raw.vocabulary_  # a plain string is read as it is


def test_raw_view_head_fits_predicts_and_keeps_old_normalisers_loadable() -> None:
    config = HeadConfig(raw_view=True, raw_min_df=1, raw_char_ngrams=(2, 4), raw_weight=0.5, min_df=1,
                        calibration="none")
    pipe = build_head(config).fit(TEXTS, LABELS)
    assert pipe.named_steps["normalize"].keep_raw is True
    names = pipe.named_steps["features"].get_feature_names_out()
    assert any(n.startswith("raw__") for n in names) and any(n.startswith("char__") for n in names)
    assert list(pipe.predict(["sampah numpuk bau", "jalan berlubang parah"])) == ["sampah", "infra"]
    old = TextNormalizer()
    state = old.__getstate__()
    del state["keep_raw"]  # a model saved before the option existed
    restored = TextNormalizer.__new__(TextNormalizer)
    restored.__setstate__(state)
    assert restored.keep_raw is False and restored.transform(["Jln rusak"]) == ["jalan rusak"]


def test_bias_tuning_keeps_probabilities_consistent_with_predictions() -> None:
    X = TfidfVectorizer().fit_transform(TEXTS)
    estimator = TemperatureCalibratedClassifier(LinearSVC(), cv=3, tune_bias=True).fit(X, LABELS)
    assert estimator.bias_.shape == (3,)
    proba = estimator.predict_proba(X)
    assert list(estimator.classes_[proba.argmax(axis=1)]) == list(estimator.predict(X))
    plain = TemperatureCalibratedClassifier(LinearSVC(), cv=3).fit(X, LABELS)
    assert not plain.bias_.any()


def test_linear_ensemble_follows_the_contract_and_folds_its_members_into_one_matrix() -> None:
    X = TfidfVectorizer().fit_transform(TEXTS)
    estimator = LinearEnsembleClassifier(members=("svm", "nbsvm", "logreg"))
    assert _learned(estimator) == set()
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)
    params = estimator.get_params()
    assert estimator.fit(X, LABELS) is estimator
    assert estimator.get_params() == params
    assert {"classes_", "coef_", "intercept_", "member_scales_"} <= _learned(estimator)
    assert estimator.coef_.shape == (3, X.shape[1]) and estimator.coef_.dtype == np.float32
    assert estimator.member_scales_.shape == (3,) and (estimator.member_scales_ > 0).all()
    assert estimator.score(X, LABELS) == 1.0
    # One member: the folded model is that member's margins divided by its scale.
    single = LinearEnsembleClassifier(members=("svm",)).fit(X, LABELS)
    reference = LinearSVC(C=0.5, class_weight="balanced").fit(X, LABELS)
    np.testing.assert_allclose(
        single.decision_function(X), reference.decision_function(X) / single.member_scales_[0], rtol=1e-4, atol=1e-5
    )


def test_linear_ensemble_handles_two_classes_and_calibration() -> None:
    X = TfidfVectorizer().fit_transform(TEXTS)
    y = ["sampah" if label == "sampah" else "lain" for label in LABELS]
    estimator = TemperatureCalibratedClassifier(LinearEnsembleClassifier(), cv=3).fit(X, y)
    proba = estimator.predict_proba(X)
    assert proba.shape == (len(TEXTS), 2)
    assert list(estimator.classes_[proba.argmax(axis=1)]) == list(estimator.predict(X))
    assert estimator.coef_.shape == (2, X.shape[1])
    assert estimator.score(X, y) == 1.0
    with pytest.raises(ValueError, match="unknown ensemble member"):
        LinearEnsembleClassifier(members=("forest",)).fit(X, y)


def test_pair_vote_adds_the_two_class_ensemble_to_its_classes_rows_only() -> None:
    X = TfidfVectorizer().fit_transform(TEXTS)
    y = np.asarray(LABELS)
    plain = LinearEnsembleClassifier(members=("svm", "nbsvm")).fit(X, y)
    paired = LinearEnsembleClassifier(members=("svm", "nbsvm"), pair=("infra", "macet"), pair_weight=0.4).fit(X, y)
    rows = np.isin(y, ["infra", "macet"])
    two = LinearEnsembleClassifier(members=("svm", "nbsvm")).fit(X[rows], y[rows])
    assert list(two.classes_) == ["infra", "macet"]
    # infra and macet gain 0.4 x the two-class vote; sampah's row is untouched.
    for k in (0, 1):
        # (liblinear shuffles its coordinates, so two fits of one model agree to about 1e-5, not bit for bit)
        np.testing.assert_allclose(paired.coef_[k], plain.coef_[k] + 0.4 * two.coef_[k], rtol=1e-4, atol=1e-5)
        assert paired.intercept_[k] == pytest.approx(plain.intercept_[k] + 0.4 * two.intercept_[k], rel=1e-4)
    np.testing.assert_array_equal(paired.coef_[2], plain.coef_[2])
    assert paired.intercept_[2] == plain.intercept_[2]
    np.testing.assert_allclose(paired.pair_member_scales_, two.member_scales_, rtol=1e-4)
    # Still one matrix (the prediction costs what it did) that clones with its pair.
    assert paired.coef_.shape == plain.coef_.shape
    assert clone(paired).get_params()["pair"] == ("infra", "macet")
    assert paired.score(X, y) == 1.0
    for bad in (("infra", "jalan"), ("infra", "infra"), ("infra",)):
        with pytest.raises(ValueError, match="pair must name two different classes"):
            LinearEnsembleClassifier(pair=bad).fit(X, y)


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True, "token_pattern": r"(?u)@?\b\w+\b"},
        {"analyzer": "word", "sublinear_tf": False, "norm": "l1", "min_df": 2},
        {"analyzer": "char_wb", "ngram_range": (2, 4), "sublinear_tf": False, "binary": True},
        {"analyzer": "char", "ngram_range": (2, 3), "use_idf": False},
    ],
)
def test_fast_tfidf_weighting_matches_scikit_learn(params: dict) -> None:
    texts = TEXTS + ["kata baru @pemkot yang belum pernah ada", "jalan jalan jalan", ""]
    ours = CompactTfidfVectorizer(dtype=np.float32, **params).fit(TEXTS)
    reference = TfidfVectorizer(dtype=np.float32, **params).fit(TEXTS)
    got, expected = ours.transform(texts), reference.transform(texts)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6)
    with pytest.raises(ValueError, match="Iterable over raw text"):
        ours.transform("one string")


def test_the_shipped_relevance_head_votes_bukan_against_keluhan_one_vs_one(shipped_model: LoadedModel) -> None:
    ensemble = shipped_model.heads["relevance"].named_steps["model"].estimator_
    assert isinstance(ensemble, LinearEnsembleClassifier)
    assert tuple(ensemble.pair) == ("bukan", "keluhan") and ensemble.pair_weight == 0.4
    assert ensemble.pair_member_scales_.shape == (len(ensemble.members),)
    assert ensemble.coef_.shape[0] == len(ensemble.classes_) == 3  # folded: no extra rows to predict with
