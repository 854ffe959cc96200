"""scikit-learn pipelines for the three heads: normaliser → word+char TF-IDF → calibrated linear model.

Every head is one :class:`~sklearn.pipeline.Pipeline` whose first step is a text normaliser, so it can
be saved with skops, evaluated on its own and still share the normalisation work at prediction time
(see :mod:`classifier.registry`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l1, inplace_csr_row_normalize_l2

from classifier.embeddings import DocumentEmbedding
from classifier.keywords import KeywordFeatures
from classifier.normalize import IdentityText, TextNormalizer
from classifier.shape import PostShape

HEADS = ("relevance", "topic", "agency")


class CharNgramIndex:
    """Counts a fitted vocabulary's ``analyzer="char"`` n-grams for a whole batch with numpy.

    scikit-learn builds every n-gram of every text as a Python string (~0.4 ms for a tweet with
    n = 2..5). Here each character becomes a small integer code (its rank in the vocabulary's alphabet;
    0 separates texts, ``base - 1`` stands for a character no n-gram contains), each n-gram a base-``base``
    number of its codes, and the batch's n-grams are looked up at once in a hash table of the vocabulary's
    numbers. Codes of real characters are never 0, so n-grams of different lengths never share a number.
    The counts are identical to scikit-learn's (tests/classifier/test_estimators.py checks this).
    :meth:`fits` says whether a vocabulary's n-gram numbers fit in 64 bits (alphabet ** max_n < 2**63).
    """

    @staticmethod
    def fits(vocabulary: dict[str, int], ngram_range: tuple[int, int]) -> bool:
        """Whether every n-gram of this vocabulary's alphabet has a 64-bit number."""
        base = len({c for term in vocabulary for c in term}) + 2
        return float(base) ** ngram_range[1] < 2.0**63

    def __init__(self, vocabulary: dict[str, int], ngram_range: tuple[int, int]) -> None:
        self.min_n, self.max_n = ngram_range
        chars = sorted({c for term in vocabulary for c in term})
        self.alphabet = np.array([ord(c) for c in chars], dtype=np.uint32)
        self.base = len(chars) + 2
        if not self.fits(vocabulary, ngram_range):
            raise ValueError("alphabet too large for 64-bit n-gram numbers")
        code = {c: i + 1 for i, c in enumerate(chars)}
        keys = np.empty(len(vocabulary), dtype=np.int64)
        columns = np.empty(len(vocabulary), dtype=np.int64)
        for n, (term, column) in enumerate(vocabulary.items()):
            key = 0
            for position, char in enumerate(term):
                key += code[char] * self.base**position
            keys[n], columns[n] = key, column
        self._build_table(keys, columns)

    _EMPTY = -1
    _GOLDEN = np.uint64(0x9E3779B97F4A7C15)

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        """Fibonacci hashing of n-gram numbers onto the table's slots."""
        return ((keys.astype(np.uint64) * self._GOLDEN) >> np.uint64(64 - self.bits)).astype(np.int64)

    def _build_table(self, keys: np.ndarray, columns: np.ndarray) -> None:
        """Open-addressing hash table (linear probing, load <= 1/4): a lookup is ~1 gather, not log2(V)."""
        self.bits = max(4, int(np.ceil(np.log2(max(len(keys), 1) * 4))))
        size = 1 << self.bits
        self.table_keys = np.full(size, self._EMPTY, dtype=np.int64)
        self.table_columns = np.zeros(size, dtype=np.int64)
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        self.max_probe = 0
        while len(pending):
            free = self.table_keys[slots[pending]] == self._EMPTY
            # Of several keys wanting one free slot, the first takes it; the rest probe on.
            _, first = np.unique(slots[pending[free]], return_index=True)
            placed = pending[free][first]
            self.table_keys[slots[placed]] = keys[placed]
            self.table_columns[slots[placed]] = columns[placed]
            pending = np.setdiff1d(pending, placed, assume_unique=True)
            slots[pending] = (slots[pending] + 1) & (size - 1)
            self.max_probe += 1 if len(pending) else 0

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``keys`` found in the vocabulary, their columns)."""
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        found_at, found_columns = [], []
        for _ in range(self.max_probe + 1):
            stored = self.table_keys[slots[pending]]
            hit = stored == keys[pending]
            found_at.append(pending[hit])
            found_columns.append(self.table_columns[slots[pending[hit]]])
            pending = pending[~hit & (stored != self._EMPTY)]
            if not len(pending):
                break
            slots[pending] = (slots[pending] + 1) & (len(self.table_keys) - 1)
        return np.concatenate(found_at), np.concatenate(found_columns)

    def _codes(self, text: str) -> np.ndarray:
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        rank = np.minimum(np.searchsorted(self.alphabet, points), len(self.alphabet) - 1)
        codes = np.where(self.alphabet[rank] == points, rank + 1, self.base - 1).astype(np.int64)
        codes[points == 0] = 0
        return codes

    def counts(self, documents: list[str], n_features: int, dtype: Any) -> sparse.csr_matrix:
        """Count matrix (documents × n_features) of already pre-processed documents."""
        if not documents:
            return sparse.csr_matrix((len(documents), n_features), dtype=dtype)
        # NUL separates documents; one inside a text must not become a separator (no n-gram has it).
        codes = self._codes("\x00".join(d.replace("\x00", "\x01") for d in documents))
        row = np.cumsum(codes == 0)
        usable = (codes > 0) & (codes < self.base - 1)
        key = np.zeros(len(codes), dtype=np.int64)
        whole = np.ones(len(codes), dtype=bool)
        rows, columns = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]  # texts too short: none
        for n in range(1, self.max_n + 1):
            width = len(codes) - n + 1
            if width <= 0:
                break
            key = key[:width] + codes[n - 1 : n - 1 + width] * self.base ** (n - 1)
            whole = whole[:width] & usable[n - 1 : n - 1 + width]
            if n < self.min_n:
                continue
            start = np.flatnonzero(whole)
            at, found = self._lookup(key[start])
            rows.append(row[start[at]])
            columns.append(found)
        r = np.concatenate(rows)
        c = np.concatenate(columns)
        matrix = sparse.csr_matrix((np.ones(len(r), dtype=dtype), (r, c)), shape=(len(documents), n_features))
        matrix.sum_duplicates()
        return matrix


class CompactTfidfVectorizer(TfidfVectorizer):
    """TfidfVectorizer that saves its vocabulary as two arrays and memoises char_wb n-grams per word.

    skops writes a dict entry by entry (with a type record per key), which takes minutes for a few
    hundred thousand n-grams; two numpy arrays are written and read in milliseconds. ``char_wb``
    n-grams never cross a word boundary, so a text's n-gram counts are the sum of its words' counts:
    caching each word's vocabulary indices turns ~15 slicing-and-lookup steps per word into one dict
    lookup, the words a batch brings that the cache has not seen are counted together with numpy
    (:meth:`_char_wb_word_indices`), and the sum over words is one sparse product, with output identical
    to scikit-learn's.
    """

    _WORD_CACHE_LIMIT = 200_000

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_word_index_cache", None)
        state.pop("_char_index_cache", None)
        vocabulary = state.pop("vocabulary_", None)
        if vocabulary is not None:
            terms = sorted(vocabulary, key=vocabulary.__getitem__)
            state["vocabulary_terms_"] = np.array(terms, dtype=str)
            state["vocabulary_index_"] = np.array([vocabulary[t] for t in terms], dtype=np.int64)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        terms = state.pop("vocabulary_terms_", None)
        index = state.pop("vocabulary_index_", None)
        if terms is not None and index is not None:
            state["vocabulary_"] = dict(zip(terms.tolist(), index.tolist(), strict=True))
        super().__setstate__(state)

    def _weigh(self, counts: Any) -> Any:
        """The fitted TfidfTransformer's arithmetic (sublinear tf, idf, row norm) without its input checks.

        scikit-learn re-validates the count matrix it has just built on every call (~0.3 ms each, which
        is most of an explain() call); the arithmetic is the same, so the output is identical.
        """
        tfidf = self._tfidf
        X = counts if counts.dtype in (np.float32, np.float64) else counts.astype(np.float64)
        if tfidf.sublinear_tf:
            np.log(X.data, X.data)
            X.data += 1.0
        if hasattr(tfidf, "idf_"):
            X.data *= tfidf.idf_[X.indices]
        if tfidf.norm == "l2":
            inplace_csr_row_normalize_l2(X)
        elif tfidf.norm == "l1":
            inplace_csr_row_normalize_l1(X)
        return X

    def transform(self, raw_documents: Any) -> Any:
        """TF-IDF matrix; the char_wb path counts n-grams through the per-word cache."""
        if not hasattr(self, "vocabulary_") or not hasattr(self, "_tfidf") or self._tfidf.norm not in ("l1", "l2", None):
            return super().transform(raw_documents)
        if isinstance(raw_documents, str):
            raise ValueError("Iterable over raw text documents expected, string object received.")
        index = self._char_index() if self.analyzer == "char" else None
        if index is not None:
            return self._weigh(self._char_counts(raw_documents, index))
        if self.analyzer == "word" and self.stop_words is None and self.tokenizer is None:
            return self._weigh(self._word_counts(raw_documents))
        if self.analyzer != "char_wb":
            _, counts = self._count_vocab(raw_documents, fixed_vocab=True)
            if self.binary:
                counts.data.fill(1)
            return self._weigh(sparse.csr_matrix(counts))
        cache: dict[str, list[int]] = self.__dict__.setdefault("_word_index_cache", {})
        if len(cache) > self._WORD_CACHE_LIMIT:
            cache.clear()
        preprocess = self.build_preprocessor()
        # documents x distinct words of the batch (each occurrence once), then distinct words x n-grams
        # from the cache: their product sums the words' n-gram counts per document in C, already free
        # of duplicates (its column indices are not sorted, which nothing downstream needs).
        word_ids: dict[str, int] = {}
        number = word_ids.setdefault
        occurrences: list[int] = []
        indptr = [0]
        for document in raw_documents:
            occurrences.extend([number(word, len(word_ids)) for word in preprocess(document).split()])
            indptr.append(len(occurrences))
        missing = [word for word in word_ids if word not in cache]
        if missing:
            cache.update(zip(missing, self._char_wb_word_indices(missing), strict=True))
        columns: list[int] = []
        word_ptr = [0]
        for word in word_ids:
            columns.extend(cache[word])
            word_ptr.append(len(columns))
        documents = sparse.csr_matrix(
            (np.ones(len(occurrences), dtype=self.dtype), np.asarray(occurrences, dtype=np.int64), np.asarray(indptr)),
            shape=(len(indptr) - 1, len(word_ids)),
        )
        ngrams = sparse.csr_matrix(
            (np.ones(len(columns), dtype=self.dtype), np.asarray(columns, dtype=np.int64), np.asarray(word_ptr)),
            shape=(len(word_ids), len(self.vocabulary_)),
        )
        counts = sparse.csr_matrix(documents @ ngrams)
        if self.binary:
            counts.data.fill(1)
        return self._weigh(counts)

    def _word_counts(self, raw_documents: Any) -> sparse.csr_matrix:
        """``analyzer="word"`` counts without stop words: scikit-learn's n-grams, minus its per-document dicts.

        scikit-learn counts each document's n-grams in a dict and sorts the matrix afterwards; here each
        document's vocabulary columns (repeats included) go straight into one array and ``sum_duplicates``
        merges them, with an identical result.
        """
        preprocess, tokenize = self.build_preprocessor(), self.build_tokenizer()
        min_n, max_n = self.ngram_range
        lookup = self.vocabulary_.get
        columns: list[int] = []
        indptr = [0]
        for document in raw_documents:
            tokens = tokenize(preprocess(self.decode(document)))
            grams = tokens if min_n == 1 else []
            for n in range(max(min_n, 2), max_n + 1):
                grams = grams + [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            columns.extend([j for j in map(lookup, grams) if j is not None])
            indptr.append(len(columns))
        counts = sparse.csr_matrix(
            (np.ones(len(columns), dtype=self.dtype), np.asarray(columns, dtype=np.int64), np.asarray(indptr)),
            shape=(len(indptr) - 1, len(self.vocabulary_)),
        )
        counts.sum_duplicates()
        if self.binary:
            counts.data.fill(1)
        return counts

    def _char_wb_word_indices(self, words: list[str]) -> list[list[int]]:
        """Vocabulary columns of each word's ``char_wb`` n-grams (repeated n-grams repeated), for a batch.

        scikit-learn pads a word with one space each side and takes its n-grams for n up to the padded
        length (a padded word shorter than ``min_n`` is one n-gram of its own): for every word of at least
        ``min_n - 2`` characters those are exactly the ``analyzer="char"`` n-grams of the padded word, so
        :class:`CharNgramIndex` counts the whole batch of new words at once. The rest (and vocabularies
        whose alphabet is too large for it) go through scikit-learn's analyser, one word at a time.
        """
        index = self._char_index()
        long_enough = [w for w in words if len(w) + 2 >= self.ngram_range[0]]
        found: dict[str, list[int]] = {}
        if index is not None and long_enough:
            counts = index.counts([f" {w} " for w in long_enough], len(self.vocabulary_), np.int64)
            columns = np.repeat(counts.indices, counts.data)
            rows = np.repeat(np.arange(len(long_enough)), np.diff(counts.indptr))
            ends = np.cumsum(np.bincount(rows, weights=counts.data, minlength=len(long_enough)).astype(np.int64))
            for word, part in zip(long_enough, np.split(columns, ends[:-1]), strict=True):
                found[word] = part.tolist()
        analyze = self.build_analyzer()
        vocabulary = self.vocabulary_
        for word in words:
            if word not in found:
                found[word] = [i for i in map(vocabulary.get, analyze(word)) if i is not None]
        return [found[word] for word in words]

    def _char_index(self) -> CharNgramIndex | None:
        """The fitted vocabulary's :class:`CharNgramIndex` (built once), or None where it cannot serve."""
        cached = self.__dict__.get("_char_index_cache")
        if cached is None or cached[0] is not self.vocabulary_:
            usable = CharNgramIndex.fits(self.vocabulary_, self.ngram_range)
            index = CharNgramIndex(self.vocabulary_, self.ngram_range) if usable else None
            cached = self.__dict__["_char_index_cache"] = (self.vocabulary_, index)
        return cached[1]

    def _char_counts(self, raw_documents: Any, index: CharNgramIndex) -> sparse.csr_matrix:
        """``analyzer="char"`` counts through :class:`CharNgramIndex` (same output as scikit-learn's)."""
        # scikit-learn's char analyzer: decode, pre-process (accents, lower case), squeeze whitespace runs.
        preprocess = self.build_preprocessor()
        documents = [self._white_spaces.sub(" ", preprocess(self.decode(d))) for d in raw_documents]
        counts = index.counts(documents, len(self.vocabulary_), self.dtype)
        if self.binary:
            counts.data.fill(1)
        return counts


class RawTextTfidfVectorizer(CompactTfidfVectorizer):
    """A TF-IDF view of the post as written: reads ``raw`` of a :class:`~classifier.normalize.NormalizedText`.

    Normalisation maps slang and stems words, which helps most n-grams and loses a few (spelling,
    word-crossing character n-grams); a head can add this view next to the normalised ones. A plain
    string is read as it is.
    """

    def build_preprocessor(self) -> Any:
        """Select the raw text, then scikit-learn's own pre-processing (lower-casing)."""
        preprocess = super().build_preprocessor()

        def raw_then_preprocess(document: Any) -> Any:
            return preprocess(getattr(document, "raw", document))

        return raw_then_preprocess


def _softmax(margins: np.ndarray, temperature: float) -> np.ndarray:
    z = margins / temperature
    z = z - z.max(axis=1, keepdims=True)
    exp = np.exp(z)
    return exp / exp.sum(axis=1, keepdims=True)


def _margins(estimator: Any, X: Any) -> np.ndarray:
    margins = np.asarray(estimator.decision_function(X), dtype=np.float64)
    if margins.ndim == 1:
        margins = np.column_stack([-margins, margins])
    return margins


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    scores = []
    for k in range(n_classes):
        tp = np.sum((predicted == k) & (truth == k))
        denominator = np.sum(predicted == k) + np.sum(truth == k)
        if np.any(truth == k):
            scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def _macro_f1_bias(margins: np.ndarray, truth: np.ndarray, n_classes: int, rounds: int = 2) -> np.ndarray:
    """Per-class margin offsets that maximise macro-F1 (coordinate ascent over a small grid)."""
    bias = np.zeros(n_classes)
    grid = np.linspace(-0.5, 0.5, 21)
    best = _macro_f1(truth, np.argmax(margins, axis=1), n_classes)
    for _ in range(rounds):
        for k in range(n_classes):
            keep = bias[k]
            for value in grid:
                bias[k] = value
                score = _macro_f1(truth, np.argmax(margins + bias, axis=1), n_classes)
                if score > best + 1e-9:
                    best, keep = score, value
            bias[k] = keep
    return bias


class TemperatureCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier whose margins become probabilities through one fitted softmax temperature.

    Unlike one-vs-rest sigmoid calibration this keeps the arg-max of the (class-balanced) margins, so
    rare classes are not pushed back under the big ones, and it stores a single weight matrix.
    The temperature minimises the log-loss of out-of-fold margins. With ``tune_bias`` a per-class
    offset is added to the margins, chosen by coordinate ascent to maximise the out-of-fold macro-F1
    (the metric the heads are judged on); the outer cross-validation measures whether that generalises.
    """

    def __init__(self, estimator: Any = None, cv: int = 3, tune_bias: bool = False, random_state: int = 0) -> None:
        self.estimator = estimator
        self.cv = cv
        self.tune_bias = tune_bias
        self.random_state = random_state

    def _base(self) -> Any:
        return clone(self.estimator) if self.estimator is not None else LinearSVC(class_weight="balanced")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TemperatureCalibratedClassifier:
        """Fit the temperature on out-of-fold margins, then the estimator on everything."""
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        oof = np.zeros((len(y), len(self.classes_)))
        _, counts = np.unique(y, return_counts=True)
        n_splits = max(2, min(self.cv, len(y)))
        splitter: Any = (
            StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)
            if counts.min() >= n_splits
            else KFold(n_splits, shuffle=True, random_state=self.random_state)
        )
        for train, test in splitter.split(np.zeros(len(y)), y):
            fold = self._base().fit(X[train], y[train], sample_weight=weights[train])
            margins = _margins(fold, X[test])
            columns = np.searchsorted(self.classes_, fold.classes_)
            filled = np.full((len(test), len(self.classes_)), margins.min() - 1.0)
            filled[:, columns] = margins
            oof[test] = filled
        truth = np.searchsorted(self.classes_, y)
        self.bias_ = _macro_f1_bias(oof, truth, len(self.classes_)) if self.tune_bias else np.zeros(len(self.classes_))
        oof = oof + self.bias_

        def log_loss(log_t: float) -> float:
            probs = _softmax(oof, float(np.exp(log_t)))
            return float(-np.average(np.log(probs[np.arange(len(y)), truth] + 1e-12), weights=weights))

        best = minimize_scalar(log_loss, bounds=(-4.0, 3.0), method="bounded")
        self.temperature_ = float(np.exp(best.x))
        self.estimator_ = self._base().fit(X, y, sample_weight=weights)
        return self

    @property
    def coef_(self) -> np.ndarray:
        """The fitted estimator's weights (classes × features), for explanations."""
        return self.estimator_.coef_

    def decision_function(self, X: Any) -> np.ndarray:
        """The estimator's margins (plus the tuned per-class offsets), one column per class."""
        # Models saved before bias tuning existed have no bias_: their offsets are zero.
        return _margins(self.estimator_, X) + getattr(self, "bias_", 0.0)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of margins divided by the fitted temperature."""
        return _softmax(self.decision_function(X), self.temperature_)

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest margin."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


def _log_count_ratios(X: Any, positive: np.ndarray, weights: np.ndarray, alpha: float) -> np.ndarray:
    """NB log-count ratio per feature for one class against the rest (binarised, weighted counts)."""
    binary = X.copy()
    binary.data = np.ones_like(binary.data)
    p = alpha + np.asarray(binary[positive].T @ weights[positive]).ravel()
    q = alpha + np.asarray(binary[~positive].T @ weights[~positive]).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


class LinearEnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Soft vote of linear models on the same features, folded into ONE weight matrix.

    Members: a class-balanced LinearSVC, an NB-SVM (one-vs-rest LinearSVC on features scaled by the
    naive-Bayes log-count ratio, Wang & Manning 2012) and a class-balanced logistic regression. Each
    member's margins are linear in the features (NB-SVM: ``(x * r_k) . w_k = x . (r_k * w_k)``; the
    logistic log-probabilities differ from linear margins only by a per-row constant), so the vote
    ``sum_m margins_m / scale_m`` is itself one linear model: ``coef_`` and ``intercept_`` hold it and
    prediction costs exactly what a single LinearSVC costs. ``scale_m`` is the standard deviation of the
    member's row-centred training margins, so no member dominates by units alone.

    ``pair`` names two classes the one-vs-rest members confuse most (relevance: ``bukan`` and
    ``keluhan``). A second vote of the same members is then fitted on the rows of those two classes alone,
    and its two class rows are added, times ``pair_weight``, to theirs. That is the one-vs-one view of the
    hard pair (Hsu & Lin 2002), still linear, so it folds into the same matrix at no prediction cost.
    """

    def __init__(self, members: tuple[str, ...] = ("svm", "nbsvm", "logreg"), C: float = 0.5,
                 nb_C: float = 0.5, logreg_C: float = 30.0, nb_alpha: float = 1.0,
                 class_weight: str | None = "balanced", pair: tuple[str, ...] | None = None,
                 pair_weight: float = 0.4) -> None:
        self.members = members
        self.C = C
        self.nb_C = nb_C
        self.logreg_C = logreg_C
        self.nb_alpha = nb_alpha
        self.class_weight = class_weight
        self.pair = pair
        self.pair_weight = pair_weight

    def _member(self, name: str, X: Any, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coef classes × features, intercept) of one member, columns in ``self.classes_`` order."""
        n_classes = len(self.classes_)
        if name == "nbsvm":
            coef = np.zeros((n_classes, X.shape[1]))
            intercept = np.zeros(n_classes)
            for k, label in enumerate(self.classes_):
                positive = y == label
                ratios = _log_count_ratios(X, positive, weights, self.nb_alpha)
                scaled = X @ sparse.diags(ratios.astype(X.dtype))
                svm = LinearSVC(C=self.nb_C, class_weight=self.class_weight)
                with warnings.catch_warnings():
                    # liblinear stops at max_iter on some NB-scaled classes; the CV figures were
                    # measured with exactly this setting, so the warning carries no news.
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    svm.fit(scaled, positive.astype(int), sample_weight=weights)
                coef[k] = ratios * svm.coef_[0]
                intercept[k] = svm.intercept_[0]
            return coef, intercept
        model: Any
        if name == "logreg":
            model = LogisticRegression(C=self.logreg_C, class_weight=self.class_weight, max_iter=2000)
        elif name == "svm":
            model = LinearSVC(C=self.C, class_weight=self.class_weight)
        else:
            raise ValueError(f"unknown ensemble member {name!r}")
        model.fit(X, y, sample_weight=weights)
        coef, intercept = np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1 and n_classes == 2:  # binary: one row for the positive class
            coef, intercept = np.vstack([-coef[0], coef[0]]), np.array([-intercept[0], intercept[0]])
        return coef, intercept

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearEnsembleClassifier:
        """Fit every member and fold their scaled weights into one matrix."""
        X = sparse.csr_matrix(X)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        coef = np.zeros((len(self.classes_), X.shape[1]))
        intercept = np.zeros(len(self.classes_))
        scales = []
        for name in self.members:
            member_coef, member_intercept = self._member(name, X, y, weights)
            margins = np.asarray(X @ member_coef.T) + member_intercept
            margins -= margins.mean(axis=1, keepdims=True)
            scale = float(margins.std()) or 1.0
            scales.append(scale)
            coef += member_coef / scale
            intercept += member_intercept / scale
        self.member_scales_ = np.asarray(scales)
        if self.pair is not None:
            self._add_pair_vote(tuple(self.pair), X, y, weights, coef, intercept)
        self.coef_ = coef.astype(np.float32)
        self.intercept_ = intercept
        return self

    def _add_pair_vote(self, pair: tuple[str, ...], X: Any, y: np.ndarray, weights: np.ndarray, coef: np.ndarray,
                       intercept: np.ndarray) -> None:
        """Add the two-class vote on the ``pair``'s rows to those classes' rows of ``coef``/``intercept``."""
        missing = [label for label in pair if label not in set(self.classes_)]
        if len(pair) != 2 or pair[0] == pair[1] or missing:
            raise ValueError(f"pair must name two different classes of {list(self.classes_)}, got {list(pair)}")
        rows = np.isin(y, pair)
        sub = clone(self).set_params(pair=None).fit(X[rows], y[rows], sample_weight=weights[rows])
        sub_coef = np.asarray(sub.coef_, dtype=np.float64)
        for k, label in enumerate(sub.classes_):
            target = int(np.flatnonzero(self.classes_ == label)[0])
            coef[target] += self.pair_weight * sub_coef[k]
            intercept[target] += self.pair_weight * sub.intercept_[k]
        self.pair_member_scales_ = sub.member_scales_

    def decision_function(self, X: Any) -> np.ndarray:
        """Summed scaled margins, one column per class."""
        # scipy copies a non-contiguous right operand on every product (``coef_.T`` is: ~12 MB for the
        # agency head, about 1 ms per call), so a contiguous transposed copy is kept (never saved).
        cached = self.__dict__.get("_coef_t")
        if cached is None or cached[0] is not self.coef_:
            cached = self.__dict__["_coef_t"] = (self.coef_, np.ascontiguousarray(self.coef_.T))
        return np.asarray(X @ cached[1], dtype=np.float64) + self.intercept_

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_coef_t", None)
        return state

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest summed margin."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


@dataclass
class HeadConfig:
    """Everything that defines one head's pipeline (the ablation flips these)."""

    normalizer: dict[str, Any] | None = field(default_factory=dict)  # None = raw text (baseline)
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    char_analyzer: str = "char_wb"
    sublinear_tf: bool = True
    min_df: int = 2
    word_max_features: int | None = 50_000
    char_max_features: int | None = 80_000
    classifier: str = "svm"  # svm | ridge | logreg | ensemble (LinearEnsembleClassifier)
    ensemble_members: tuple[str, ...] = ("svm", "nbsvm", "logreg")
    C: float = 0.5
    class_weight: str | None = "balanced"
    calibration: str = "temperature"  # temperature | sigmoid | none
    calibration_folds: int = 3
    tune_bias: bool = False  # per-class margin offsets maximising out-of-fold macro-F1
    auxiliary: bool = False  # add the other source's rows, label-mapped, to training (never to evaluation)
    auxiliary_weight: float = 0.5
    # A second view of the post as written (RawTextTfidfVectorizer, analyzer="char": n-grams may cross
    # words), next to the normalised word and char_wb blocks. Needs a normaliser (not the baseline).
    raw_view: bool = False
    raw_char_ngrams: tuple[int, int] = (2, 5)
    raw_min_df: int = 2
    raw_max_features: int | None = 80_000
    raw_weight: float = 1.0
    # Government-function keyword counts (classifier.keywords.KeywordFeatures) read from the post as
    # written: the name of a keyword file in classifier/lexicons/, or None for no keyword block.
    keywords: str | None = None
    keyword_weight: float = 0.3
    # Mean word vector of the post (classifier.embeddings.DocumentEmbedding, PPMI + SVD vectors learned
    # from the head's training text): the number of dimensions, or None for no embedding block.
    embedding_dim: int | None = None
    embedding_weight: float = 0.5
    # Length bins and opening/closing words of the post (classifier.shape.PostShape).
    shape: bool = False
    shape_edge_words: int = 3
    shape_weight: float = 0.3
    # Two classes the ensemble also separates one-vs-one (LinearEnsembleClassifier.pair), or None.
    pair: tuple[str, str] | None = None
    pair_weight: float = 0.4

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form for the model card."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        """The configuration a model card (or evaluation report) recorded; fields it lacks keep their defaults."""
        fields: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in cls.__dataclass_fields__
        }
        return cls(**fields)


def baseline_config() -> HeadConfig:
    """The published reference: word+char TF-IDF, LinearSVC with balanced classes, no normalisation."""
    return HeadConfig(
        normalizer=None,
        word_ngrams=(1, 2),
        char_ngrams=(2, 5),
        char_analyzer="char",
        sublinear_tf=False,
        min_df=1,
        word_max_features=None,
        char_max_features=None,
        classifier="svm",
        C=1.0,
        calibration="none",
    )


def build_head(config: HeadConfig) -> Pipeline:
    """An unfitted pipeline for one head."""
    raw_view = config.raw_view and config.normalizer is not None
    keep_raw = raw_view or config.keywords is not None or config.shape
    first = (
        IdentityText()
        if config.normalizer is None
        else TextNormalizer(**{**config.normalizer, **({"keep_raw": True} if keep_raw else {})})
    )
    # The normaliser already lower-cases and tokenises; token_pattern keeps "@handle" tokens whole.
    word = CompactTfidfVectorizer(
        ngram_range=config.word_ngrams,
        sublinear_tf=config.sublinear_tf,
        min_df=config.min_df,
        max_features=config.word_max_features,
        token_pattern=r"(?u)@?\b\w+\b",  # noqa: S106 - a regex, not a password
        dtype=np.float32,
    )
    char = CompactTfidfVectorizer(
        analyzer=config.char_analyzer,
        ngram_range=config.char_ngrams,
        sublinear_tf=config.sublinear_tf,
        min_df=config.min_df,
        max_features=config.char_max_features,
        dtype=np.float32,
    )
    blocks: list[tuple[str, Any]] = [("word", word), ("char", char)]
    weights: dict[str, float] = {}  # blocks not named keep weight 1
    if raw_view:
        raw = RawTextTfidfVectorizer(
            analyzer="char",
            ngram_range=config.raw_char_ngrams,
            sublinear_tf=config.sublinear_tf,
            min_df=config.raw_min_df,
            max_features=config.raw_max_features,
            dtype=np.float32,
        )
        blocks.append(("raw", raw))
        if config.raw_weight != 1.0:
            weights["raw"] = config.raw_weight
    if config.keywords is not None:
        blocks.append(("keywords", KeywordFeatures(lexicon=config.keywords)))
        weights["keywords"] = config.keyword_weight
    if config.embedding_dim is not None:
        blocks.append(("embedding", DocumentEmbedding(dim=config.embedding_dim)))
        weights["embedding"] = config.embedding_weight
    if config.shape:
        blocks.append(("shape", PostShape(edge_words=config.shape_edge_words)))
        weights["shape"] = config.shape_weight
    features = FeatureUnion(blocks, transformer_weights=weights or None)
    model: Any
    if config.classifier == "logreg":
        model = LogisticRegression(C=config.C * 20, class_weight=config.class_weight, max_iter=2000)
    elif config.classifier == "ensemble":
        model = LinearEnsembleClassifier(members=tuple(config.ensemble_members), C=config.C, nb_C=config.C,
                                         class_weight=config.class_weight,
                                         pair=tuple(config.pair) if config.pair else None,
                                         pair_weight=config.pair_weight)
    elif config.classifier == "ridge":
        model = RidgeClassifier(alpha=1.0 / config.C, class_weight=config.class_weight)
    else:
        model = LinearSVC(C=config.C, class_weight=config.class_weight)
    if config.calibration == "temperature" and config.classifier != "logreg":
        model = TemperatureCalibratedClassifier(model, cv=config.calibration_folds, tune_bias=config.tune_bias)
    elif config.calibration == "sigmoid":
        model = CalibratedClassifierCV(model, cv=config.calibration_folds, method="sigmoid")
    return Pipeline([("normalize", first), ("features", features), ("model", model)])


def linear_weights(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """(classes, coefficient matrix classes × features) of a linear or calibrated-linear model."""
    if isinstance(model, CalibratedClassifierCV):
        coefs = [np.asarray(cc.estimator.coef_) for cc in model.calibrated_classifiers_]
        coef = np.mean(coefs, axis=0)
    else:
        coef = np.asarray(model.coef_)
    classes = np.asarray(model.classes_)
    if coef.shape[0] == 1 and len(classes) == 2:  # binary: one row for the positive class
        coef = np.vstack([-coef[0], coef[0]])
    return classes, coef


def predict_scores(model: Any, features: Any) -> np.ndarray:
    """Probabilities per class; an uncalibrated SVM's margins are squashed with a softmax."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(features))
    margins = np.asarray(model.decision_function(features))
    if margins.ndim == 1:
        margins = np.column_stack([-margins, margins])
    margins = margins - margins.max(axis=1, keepdims=True)
    exp = np.exp(margins)
    return exp / exp.sum(axis=1, keepdims=True)
