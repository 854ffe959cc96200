"""Government-function keywords as features: outside knowledge for classes the data barely shows.

The agency head learns from 1,697 LAPOR! reports, and six of its 23 functions have fewer than 20
rows: a report about a landslide or a property-tax bill may use words no training row of its class
used. :class:`KeywordFeatures` adds one column per function, the (log) count of that function's
keywords in the post as written (``lexicons/agency_keywords.csv``, written from the public duties of
each OPD), so every keyword of a function shares the weight the few rows of that class teach.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from classifier.guard import MAX_CHARS  # the classifier's input cap also bounds each block's work per post

# Keywords this short are acronyms (kk, rt, sd, tps): they match whole words only.
EXACT_MAX_LEN = 3
_NOT_WORD = re.compile(r"[^\w]+")  # keywords: punctuation reads as a space
_WORD = re.compile(r"\w+")
# Distinct words remembered per process (their matches); cleared when full.
MEMO_SIZE = 200_000


@lru_cache(maxsize=4)
def load_keywords(name: str) -> dict[str, tuple[str, ...]]:
    """function → its keywords, from ``classifier/lexicons/<name>.csv`` (``#`` lines are comments)."""
    folder = resources.files("classifier").joinpath("lexicons")
    if not re.fullmatch(r"\w+", name) or not folder.joinpath(f"{name}.csv").is_file():
        known = sorted(
            p.name.removesuffix(".csv") for p in folder.iterdir() if p.name.endswith("_keywords.csv")
        )
        raise ValueError(f"no keyword file {name!r} in classifier/lexicons (known: {', '.join(known)})")
    text = folder.joinpath(f"{name}.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    table: dict[str, list[str]] = {}
    for row in rows:
        keyword = " ".join(_NOT_WORD.sub(" ", row["keyword"].lower()).split())
        if keyword:
            table.setdefault(row["function"].strip(), []).append(keyword)
    return {function: tuple(dict.fromkeys(words)) for function, words in table.items()}


class KeywordFeatures(TransformerMixin, BaseEstimator):
    """One column per function: ``log(1 + number of its keywords in the post)``.

    Reads the post as written (``raw`` of a :class:`~classifier.normalize.NormalizedText`, or the plain
    string): keywords are formal words and acronyms that stemming and slang mapping would only blur.
    A keyword of four letters or more also matches its suffixed forms (``pajak`` → ``pajaknya``). The
    fitted transformer carries its keywords, so a saved model does not change when the file does.
    """

    def __init__(self, lexicon: str = "agency_keywords") -> None:
        self.lexicon = lexicon

    def fit(self, X: Iterable[Any], y: Any = None) -> KeywordFeatures:
        """Load the keywords (nothing is learned from ``X``)."""
        table = load_keywords(self.lexicon)
        self.functions_ = np.asarray(sorted(table), dtype=object)
        columns: dict[str, list[int]] = {}
        for column, function in enumerate(self.functions_):
            for keyword in table[function]:
                columns.setdefault(keyword, []).append(column)
        self.keywords_ = columns
        return self

    def _index(self) -> _Index:
        # Built once per process from ``keywords_`` and never saved.
        cached = self.__dict__.get("_built")
        if cached is None or cached.keywords is not self.keywords_:
            cached = self.__dict__["_built"] = _Index(self.keywords_)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_built", None)
        return state

    def transform(self, X: Iterable[Any]) -> sparse.csr_matrix:
        """Sparse float32 matrix, rows × functions."""
        index = self._index()
        indptr: list[int] = [0]
        indices: list[int] = []
        data: list[int] = []
        for document in X:
            counts = index.count(_words(document))
            indices.extend(counts)
            data.extend(counts.values())
            indptr.append(len(indices))
        matrix = sparse.csr_matrix(
            (np.log1p(np.asarray(data, dtype=np.float32)), np.asarray(indices, dtype=np.int32), indptr),
            shape=(len(indptr) - 1, len(self.functions_)),
        )
        matrix.sort_indices()
        return matrix

    def cache_key(self) -> tuple[str, int]:
        """Equal for two fitted transformers with the same keywords (their outputs on a batch are equal)."""
        return (self.lexicon, self._index().fingerprint)

    def matches(self, document: Any) -> dict[str, list[str]]:
        """function → the words of ``document`` that matched its keywords, for explanations."""
        found: dict[int, list[str]] = {}
        self._index().count(_words(document), found)
        return {str(self.functions_[column]): list(dict.fromkeys(words)) for column, words in found.items()}

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``keywords:<FUNCTION>`` per column."""
        return np.asarray([f"keywords:{function}" for function in self.functions_], dtype=object)


_NOTHING: tuple[tuple[int, ...], list[Any]] = ((), [])  # memo entry of a word that starts no keyword


def _words(document: Any) -> list[str]:
    """Lower-cased words of the post as written (capped)."""
    return _WORD.findall(str(getattr(document, "raw", document))[:MAX_CHARS].lower())


class _Index:
    """Word-level matcher: each function counts its keywords without overlaps, longest first.

    A word's single-word matches and the multi-word keywords it may start are looked up once per
    distinct word (prefix matching costs one dictionary probe per prefix length), so a tweet costs a
    few dictionary lookups per word instead of a regex with hundreds of alternatives.
    """

    def __init__(self, keywords: dict[str, list[int]]) -> None:
        self.keywords = keywords
        self.fingerprint = hash(tuple(sorted((k, tuple(v)) for k, v in keywords.items())))
        self.exact: dict[str, tuple[int, ...]] = {}  # short single words (acronyms)
        self.prefix: dict[str, tuple[int, ...]] = {}  # single words that also match suffixed forms
        starts: dict[str, list[tuple[tuple[str, ...], bool, tuple[int, ...]]]] = {}
        for keyword, columns in keywords.items():
            tokens = tuple(keyword.split())
            is_prefix = len(keyword) > EXACT_MAX_LEN
            if len(tokens) == 1:
                table = self.prefix if is_prefix else self.exact
                table[keyword] = table.get(keyword, ()) + tuple(columns)
            else:
                starts.setdefault(tokens[0], []).append((tokens, is_prefix, tuple(columns)))
        self.starts = {w: sorted(entries, key=lambda e: -len(e[0])) for w, entries in starts.items()}
        self.lengths = sorted({len(k) for k in self.prefix}, reverse=True)
        # Every prefix keyword is longer than EXACT_MAX_LEN: a word whose first letters start none of
        # them needs no prefix probes (most words of a post).
        self.heads = {k[: EXACT_MAX_LEN + 1] for k in self.prefix}
        self.memo: dict[str, tuple[tuple[int, ...], list[tuple[tuple[str, ...], bool, tuple[int, ...]]]]] = {}

    def _word(self, word: str) -> tuple[tuple[int, ...], list[tuple[tuple[str, ...], bool, tuple[int, ...]]]]:
        found = self.memo.get(word)
        if found is None:
            columns = self.exact.get(word, ())
            if word[: EXACT_MAX_LEN + 1] in self.heads:
                for n in self.lengths:
                    if n <= len(word):
                        columns += self.prefix.get(word[:n], ())
            phrases = self.starts.get(word, [])
            found = (columns, phrases) if columns or phrases else _NOTHING
            if len(self.memo) >= MEMO_SIZE:
                self.memo.clear()
            self.memo[word] = found
        return found

    def count(self, words: list[str], found: dict[int, list[str]] | None = None) -> dict[int, int]:
        """column → number of non-overlapping keyword matches in ``words`` (the words matched → ``found``)."""
        counts: dict[int, int] = {}
        free: dict[int, int] = {}  # column → first word index not yet consumed by one of its matches
        total = len(words)
        memo = self.memo
        for i, word in enumerate(words):
            entry = memo.get(word) or self._word(word)
            if entry is _NOTHING:
                continue
            singles, phrases = entry
            for tokens, is_prefix, columns in phrases:
                n = len(tokens)
                if i + n > total or words[i + 1 : i + n - 1] != list(tokens[1:-1]):
                    continue
                last = words[i + n - 1]
                if not (last.startswith(tokens[-1]) if is_prefix else last == tokens[-1]):
                    continue
                for column in columns:
                    if free.get(column, 0) <= i:
                        counts[column] = counts.get(column, 0) + 1
                        free[column] = i + n
                        if found is not None:
                            found.setdefault(column, []).append(" ".join(words[i : i + n]))
            for column in singles:
                if free.get(column, 0) <= i:
                    counts[column] = counts.get(column, 0) + 1
                    free[column] = i + 1
                    if found is not None:
                        found.setdefault(column, []).append(word)
        return counts
