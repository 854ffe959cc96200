"""A bounded, memoised Indonesian stemmer in front of Sastrawi.

Sastrawi is accurate but costs about 0.25 s on a word its dictionary cannot explain (names, slang,
typos, Kupang Malay), because it backtracks through every affix combination before giving up. Fresh
social-media text is full of such words, so memoising alone does not help. This stemmer first makes a
cheap guess: strip the usual particles, possessives, suffixes and prefixes (with the nasal recoding of
``meN-``/``peN-``) and look each candidate up in Sastrawi's root dictionary. Only when some candidate
is a known root is Sastrawi asked (then it finds the root quickly); otherwise the word is returned
unchanged. Results are memoised in a bounded dict.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

_PARTICLES = ("lah", "kah", "tah", "pun")
_POSSESSIVES = ("nya", "ku", "mu")
_SUFFIXES = ("kan", "an", "i")
_PLAIN_PREFIXES = ("di", "ke", "se", "ber", "be", "ter", "te", "per", "pe")
# Nasal prefixes with the root's first letter they may have swallowed ("" = nothing swallowed).
_NASAL_PREFIXES = (
    ("meny", ("s",)),
    ("peny", ("s",)),
    ("meng", ("", "k")),
    ("peng", ("", "k")),
    ("mem", ("p", "", "m")),
    ("pem", ("p", "", "m")),
    ("men", ("t", "", "n")),
    ("pen", ("t", "", "n")),
    ("me", ("",)),
)
MAX_WORD_LENGTH = 30
MAX_CACHE_ENTRIES = 200_000


@functools.lru_cache(maxsize=1)
def root_words() -> frozenset[str]:
    """Sastrawi's root-word dictionary."""
    import Sastrawi.Stemmer

    path = Path(Sastrawi.Stemmer.__file__).parent / "data" / "kata-dasar.txt"
    return frozenset(w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip())


class SetDictionary:
    """Sastrawi's dictionary interface over a set.

    Sastrawi's own ``ArrayDictionary`` keeps its 30,000 roots in a *list*, so every lookup is a linear
    scan; an unknown word triggers hundreds of lookups while Sastrawi backtracks, which is where its
    quarter of a second per unknown word goes.
    """

    def __init__(self, words: frozenset[str]) -> None:
        self.words = words

    def contains(self, word: str) -> bool:
        """True for a known root word."""
        return word in self.words

    def count(self) -> int:
        """Number of root words."""
        return len(self.words)


@functools.lru_cache(maxsize=1)
def _sastrawi() -> Any:
    # The plain stemmer, not the factory's cached one: we keep our own bounded cache.
    from Sastrawi.Stemmer.Stemmer import Stemmer

    return Stemmer(SetDictionary(root_words()))


def _strip_suffixes(word: str) -> list[str]:
    forms = [word]
    for group in (_PARTICLES, _POSSESSIVES, _SUFFIXES):
        extra = []
        for form in forms:
            for suffix in group:
                if form.endswith(suffix) and len(form) - len(suffix) >= 3:
                    extra.append(form[: -len(suffix)])
        forms.extend(extra)
    return forms


def _strip_prefixes(word: str) -> list[str]:
    forms = [word]
    for _ in range(2):  # at most two stacked prefixes (di-per-, mem-per-, ...)
        extra = []
        for form in forms:
            for prefix in _PLAIN_PREFIXES:
                if form.startswith(prefix) and len(form) - len(prefix) >= 3:
                    extra.append(form[len(prefix) :])
            for prefix, restores in _NASAL_PREFIXES:
                if form.startswith(prefix) and len(form) - len(prefix) >= 2:
                    rest = form[len(prefix) :]
                    extra.extend(letter + rest for letter in restores)
        forms.extend(extra)
    return forms


_ANY_SUFFIX = _PARTICLES + _POSSESSIVES + _SUFFIXES
_ANY_PREFIX = _PLAIN_PREFIXES + tuple(prefix for prefix, _ in _NASAL_PREFIXES)


def has_known_root(word: str) -> bool:
    """True when some affix-stripped form of ``word`` is in Sastrawi's root dictionary."""
    if not (word.endswith(_ANY_SUFFIX) or word.startswith(_ANY_PREFIX)):
        return False  # no affix at all: nothing to strip
    roots = root_words()
    for form in _strip_suffixes(word):
        for candidate in _strip_prefixes(form):
            if candidate != word and candidate in roots:
                return True
    return False


class BoundedStemmer:
    """Memoised stemmer that never sends Sastrawi a word it would not find a root for."""

    def __init__(self, max_entries: int = MAX_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def stem(self, word: str) -> str:
        """The root of ``word``, or ``word`` itself when no known root can be reached cheaply."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        result = self._stem_uncached(word)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[word] = result
        return result

    def _stem_uncached(self, word: str) -> str:
        if len(word) < 4 or len(word) > MAX_WORD_LENGTH or not word.isalpha() or word in root_words():
            return word
        if not has_known_root(word):
            return word
        stemmed = _sastrawi().stem(word)
        return stemmed or word


@functools.lru_cache(maxsize=1)
def shared_stemmer() -> BoundedStemmer:
    """The process-wide stemmer (its cache is shared by every model in the process)."""
    return BoundedStemmer()
