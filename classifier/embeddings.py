"""Word vectors learned from the training text itself, and a post's mean vector as features.

No pretrained Indonesian vectors can be downloaded here, and PyPI ships none, so the head learns its
own: positive pointwise mutual information of words within a window of five, reduced to ``dim``
dimensions by truncated SVD (Levy, Goldberg & Dagan 2015: on small corpora this matches word2vec).
Words of the same report type share directions ("longsor", "banjir", "tanggul"), so a post whose words
no training row of its class used still lands near that class. :class:`DocumentEmbedding` is a
scikit-learn transformer: ``fit`` learns the vectors from the texts it is given (the training rows,
nothing else), ``transform`` returns the L2-normalised mean vector of each post's known words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD

from classifier.guard import MAX_CHARS  # the classifier's input cap also bounds each block's work per post

# Context-distribution smoothing of the PPMI (Levy et al. 2015): rare contexts stop dominating.
CONTEXT_SMOOTHING = 0.75


def cooccurrence(documents: Sequence[Sequence[int]], n_words: int, window: int) -> sparse.csr_matrix:
    """Symmetric word × word counts within ``window`` words, each pair weighted 1 / distance."""
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for document in documents:
        ids = np.asarray(document, dtype=np.int64)
        for distance in range(1, min(window, len(ids) - 1) + 1):
            left, right = ids[:-distance], ids[distance:]
            weight = np.full(len(left), 1.0 / distance)
            rows += [left, right]
            cols += [right, left]
            vals += [weight, weight]
    if not rows:
        return sparse.csr_matrix((n_words, n_words))
    matrix = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_words, n_words)
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


def ppmi(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Positive PMI of a co-occurrence matrix, with smoothed context probabilities."""
    total = counts.sum()
    word_p = np.asarray(counts.sum(axis=1)).ravel() / total
    context = np.asarray(counts.sum(axis=0)).ravel() ** CONTEXT_SMOOTHING
    context_p = context / context.sum()
    coo = counts.tocoo()
    pmi = np.log(coo.data / total) - np.log(word_p[coo.row]) - np.log(context_p[coo.col])
    keep = pmi > 0
    return sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)


def _tokens(document: Any) -> list[str]:
    return str(document)[:MAX_CHARS].split()


class DocumentEmbedding(TransformerMixin, BaseEstimator):
    """L2-normalised mean of a post's word vectors; the vectors are learned in ``fit`` (PPMI + SVD).

    Reads the head's normalised text (tokens separated by spaces). Words seen fewer than ``min_count``
    times in training get no vector; a post with no known word is a zero row.
    """

    def __init__(self, dim: int = 100, window: int = 5, min_count: int = 2, random_state: int = 0) -> None:
        self.dim = dim
        self.window = window
        self.min_count = min_count
        self.random_state = random_state

    def fit(self, X: Iterable[Any], y: Any = None) -> DocumentEmbedding:
        """Learn one vector per word of ``X`` seen at least ``min_count`` times."""
        documents = [_tokens(d) for d in X]
        frequency = Counter(word for document in documents for word in document)
        words = sorted((w for w, n in frequency.items() if n >= self.min_count), key=lambda w: (-frequency[w], w))
        vocabulary = {word: i for i, word in enumerate(words)}
        ids = [[vocabulary[w] for w in document if w in vocabulary] for document in documents]
        matrix = ppmi(cooccurrence(ids, len(words), self.window))
        vectors = np.zeros((len(words), self.dim))
        rank = min(self.dim, len(words) - 1)  # a tiny vocabulary leaves the last columns zero
        if rank >= 1:
            svd = TruncatedSVD(rank, algorithm="randomized", n_iter=7, random_state=self.random_state)
            # U·Σ^½ (eigenvalue weighting 0.5), then unit rows: cosine geometry, no frequency bias.
            vectors[:, :rank] = svd.fit_transform(matrix) / np.sqrt(np.maximum(svd.singular_values_, 1e-12))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        self.vocabulary_ = vocabulary
        self.vectors_ = vectors.astype(np.float32)
        return self

    def _counts(self, X: Iterable[Any]) -> sparse.csr_matrix:
        vocabulary = self.vocabulary_
        indptr = [0]
        indices: list[int] = []
        for document in X:
            indices.extend(i for i in map(vocabulary.get, _tokens(document)) if i is not None)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float32)
        return sparse.csr_matrix(
            (data, np.asarray(indices, dtype=np.int32), indptr), shape=(len(indptr) - 1, len(vocabulary))
        )

    def transform(self, X: Iterable[Any]) -> sparse.csr_matrix:
        """rows × ``dim`` (stored sparse so it joins the TF-IDF blocks without densifying them)."""
        sums = np.asarray(self._counts(X) @ self.vectors_)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return sparse.csr_matrix(np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0))

    def word_contributions(self, document: Any, weights: np.ndarray) -> dict[str, float]:
        """word → its share of ``weights · transform([document])`` (the block's part of a margin).

        The mean vector is ``sum_w v_w / |sum_w v_w|``, linear in each word's vector for a given post,
        so the block's contribution splits exactly into one term per known word (repeats add up).
        """
        words = [w for w in _tokens(document) if w in self.vocabulary_]
        if not words:
            return {}
        vectors = self.vectors_[[self.vocabulary_[w] for w in words]].astype(np.float64)
        norm = float(np.linalg.norm(vectors.sum(axis=0)))
        if norm == 0.0:
            return {}
        shares: dict[str, float] = {}
        for word, value in zip(words, vectors @ weights / norm, strict=True):
            shares[word] = shares.get(word, 0.0) + float(value)
        return shares

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``dim000`` … per column."""
        return np.asarray([f"dim{k:03d}" for k in range(self.vectors_.shape[1])], dtype=object)
