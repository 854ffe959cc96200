"""Document embeddings: vectors learned from the training text, mean-vector features, explanations."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from scipy import sparse
from sklearn.base import clone

from classifier.embeddings import MAX_CHARS, DocumentEmbedding, cooccurrence, ppmi
from classifier.registry import TRUSTED_TYPES

_PLACES = ["oebobo", "alak", "maulafa", "kelapa lima", "naikoten", "fatululi", "kota raja", "kota lama"]
# "banjir" and "genangan" never share a post but share every context; "ktp" lives elsewhere.
_CORPUS = [
    *(f"{w} setinggi lutut di jalan {p} setelah hujan deras" for w, p in itertools.product(["banjir", "genangan"], _PLACES)),
    *(f"{w} saya belum jadi di kantor dukcapil {p} sudah sebulan" for w, p in itertools.product(["ktp", "akta"], _PLACES)),
]


@pytest.fixture(scope="module")
def fitted() -> DocumentEmbedding:
    return DocumentEmbedding(dim=8).fit(_CORPUS)


def test_fit_learns_unit_vectors_for_words_seen_min_count_times(fitted: DocumentEmbedding) -> None:
    assert fitted.fit(_CORPUS) is fitted
    assert set(fitted.vocabulary_) >= {"banjir", "genangan", "ktp", "akta", "setinggi"}
    assert "lima" in fitted.vocabulary_ and fitted.vectors_.shape == (len(fitted.vocabulary_), 8)
    assert fitted.vectors_.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fitted.vectors_, axis=1), 1.0, atol=1e-5)
    rare = DocumentEmbedding(dim=4, min_count=3).fit(["satu kali saja", "dua dua dua"])
    assert set(rare.vocabulary_) == {"dua"} and rare.vectors_.shape == (1, 4)  # too few words: zero columns
    assert rare.transform(["dua"]).shape == (1, 4)


def test_words_used_alike_get_close_vectors(fitted: DocumentEmbedding) -> None:
    def cosine(a: str, b: str) -> float:
        va, vb = (fitted.vectors_[fitted.vocabulary_[w]] for w in (a, b))
        return float(va @ vb)

    assert cosine("banjir", "genangan") > 0.9
    assert cosine("banjir", "genangan") > cosine("banjir", "ktp") + 0.5
    assert cosine("ktp", "akta") > cosine("ktp", "genangan") + 0.5


def test_transform_is_the_normalised_mean_vector(fitted: DocumentEmbedding) -> None:
    out = fitted.transform(["banjir di jalan alak", "kata asing sekali", "", "banjir"])
    assert sparse.issparse(out) and out.shape == (4, 8)
    dense = out.toarray()
    words = ["banjir", "di", "jalan", "alak"]
    expected = fitted.vectors_[[fitted.vocabulary_[w] for w in words]].sum(axis=0)
    np.testing.assert_allclose(dense[0], expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    assert not dense[1].any() and not dense[2].any()  # no known word: a zero row, never NaN
    np.testing.assert_allclose(dense[3], fitted.vectors_[fitted.vocabulary_["banjir"]], rtol=1e-5)
    # a post far past the cap costs no more than the cap and still yields a vector
    huge = fitted.transform(["banjir " * (MAX_CHARS // 3)]).toarray()[0]
    np.testing.assert_allclose(np.linalg.norm(huge), 1.0, atol=1e-5)


def test_word_contributions_add_up_to_the_block_contribution(fitted: DocumentEmbedding) -> None:
    weights = np.random.default_rng(0).normal(size=8)
    text = "banjir banjir setinggi lutut di oebobo, kata asing"
    shares = fitted.word_contributions(text, weights)
    assert set(shares) == {"banjir", "setinggi", "lutut", "di", "oebobo,"} - {"oebobo,"}
    assert shares["banjir"] != 0
    total = float(fitted.transform([text]).toarray()[0] @ weights)
    assert sum(shares.values()) == pytest.approx(total, rel=1e-5)
    assert fitted.word_contributions("kata asing", weights) == {}


def test_cooccurrence_and_ppmi_by_hand() -> None:
    counts = cooccurrence([[0, 1, 2]], n_words=3, window=5).toarray()
    # pairs within the window, weighted 1/distance, both directions
    np.testing.assert_allclose(counts, [[0, 1, 0.5], [1, 0, 1], [0.5, 1, 0]])
    positive = ppmi(sparse.csr_matrix(counts)).toarray()
    # the textbook formula, densely: log(P(w, c) / (P(w) P_0.75(c))), negatives and zeros dropped
    total = counts.sum()
    context = counts.sum(axis=0) ** 0.75
    with np.errstate(divide="ignore"):
        expected = np.log((counts / total) / np.outer(counts.sum(axis=1) / total, context / context.sum()))
    np.testing.assert_allclose(positive, np.where(expected > 0, expected, 0.0), rtol=1e-12)
    assert positive[0, 1] > positive[0, 2] > 0  # closer neighbours weigh more
    assert cooccurrence([[3]], n_words=4, window=5).nnz == 0


def test_clone_and_skops_round_trip(tmp_path: Path, fitted: DocumentEmbedding) -> None:
    assert clone(fitted).get_params() == fitted.get_params()
    path = tmp_path / "embedding.skops"
    sio.dump(fitted, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) <= set(TRUSTED_TYPES)
    loaded = sio.load(path, trusted=untrusted)
    texts = ["banjir di alak", "ktp belum jadi"]
    np.testing.assert_array_equal(loaded.transform(texts).toarray(), fitted.transform(texts).toarray())
