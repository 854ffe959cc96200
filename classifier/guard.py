"""Recognise input the model must not pretend to understand: empty, binary, huge, not Indonesian."""

from __future__ import annotations

import functools
import re

from classifier.normalize import colloquial_lexicon, kupang_overlay, stop_words
from classifier.stemmer import has_known_root, root_words

MAX_CHARS = 20_000
MIN_WORDS_FOR_LANGUAGE_CHECK = 5
MIN_INDONESIAN_SHARE = 0.2
MIN_WORDS_WITHOUT_FUNCTION_WORDS = 8
# Indonesian is written in Latin letters: not one training row has under 90% of them. A post whose
# letters are mostly of another script (CJK, Cyrillic, Arabic, Thai, ...) is not Indonesian however
# short it is (a CJK sentence is one "word" to the word-based check).
MIN_LATIN_SHARE = 0.5

EMPTY = "kosong"
BINARY = "biner"
TOO_LONG = "terlalu_panjang"
NOT_INDONESIAN = "bukan_bahasa_indonesia"

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_STRIP = re.compile(r"(?:https?://\S+|@\w+|#\w+)")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")


@functools.lru_cache(maxsize=1)
def indonesian_words() -> frozenset[str]:
    """Root words, slang forms and their formal equivalents, stop-words, Kupang forms."""
    words: set[str] = set(root_words()) | set(stop_words())
    for table in (colloquial_lexicon(), kupang_overlay()):
        words.update(table)
        for formal in table.values():
            words.update(formal.split())
    return frozenset(words)


# Frequent function words of other languages posts may arrive in (French, Spanish, Portuguese, German).
_OTHER_FUNCTION_WORDS = frozenset(
    " ".join((
        "le la les des une est et pour dans avec sur pas qui que du au ce il elle nous vous sont",
        "el los las una es y para con por del al como pero muy esta este",
        "os uma não com em do da na um",
        "der die das und ist nicht mit ein eine zu auf für von den dem sich",
    )).split(" ")
)


@functools.lru_cache(maxsize=1)
def _function_words() -> tuple[frozenset[str], frozenset[str]]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    indonesian = frozenset(stop_words()) | {"yg", "gak", "ga", "nggak", "sdh", "udah", "aja"}
    foreign = (frozenset(ENGLISH_STOP_WORDS) | _OTHER_FUNCTION_WORDS) - indonesian_words()
    return indonesian - foreign, foreign


def language_evidence(text: str) -> tuple[int, float, int, int]:
    """(words, share of known Indonesian words, Indonesian function words, English function words)."""
    words = _WORD.findall(_STRIP.sub(" ", text.lower()))
    if not words:
        return 0, 0.0, 0, 0
    known = indonesian_words()
    indonesian, english = _function_words()
    id_hits = sum(1 for w in words if w in indonesian)
    en_hits = sum(1 for w in words if w in english)
    if id_hits and en_hits <= id_hits:
        return len(words), 1.0, id_hits, en_hits  # clearly Indonesian: skip the slower word check
    hits = sum(1 for w in words if w in known or (len(w) > 4 and (_affixed_known(w, known) or has_known_root(w))))
    return len(words), hits / len(words), id_hits, en_hits


def _affixed_known(word: str, known: frozenset[str]) -> bool:
    for suffix in ("nya", "kan", "an", "i", "lah", "ku", "mu"):
        if word.endswith(suffix) and word[: -len(suffix)] in known:
            return True
    for prefix in ("di", "ke", "se", "ber", "ter", "me", "mem", "men", "meng", "pe", "per"):
        if word.startswith(prefix) and word[len(prefix) :] in known:
            return True
    return False


def mostly_other_script(text: str) -> bool:
    """Whether most letters of ``text`` (outside URLs, @handles, #hashtags) are not Latin."""
    if text.isascii():
        return False
    letters = _STRIP.sub(" ", text)
    n_letters = len(_LETTER.findall(letters))
    return n_letters > 0 and len(_LATIN_LETTER.findall(letters)) < MIN_LATIN_SHARE * n_letters


def unusable_reason(text: object) -> str:
    """Why ``text`` cannot be classified ("" when it can)."""
    if not isinstance(text, str):
        return BINARY
    if not text.strip():
        return EMPTY
    if len(text) > MAX_CHARS:
        return TOO_LONG
    sample = text[:4000]
    control = len(_CONTROL.findall(sample))
    if "\x00" in sample or control / len(sample) > 0.05:
        return BINARY
    if mostly_other_script(sample):
        return NOT_INDONESIAN
    n_words, share, id_hits, en_hits = language_evidence(sample)
    if n_words == 0 and not any(ch.isalnum() for ch in sample):
        return EMPTY
    if n_words >= MIN_WORDS_FOR_LANGUAGE_CHECK and (
        (en_hits >= 3 and en_hits > 2 * id_hits) or (id_hits == 0 and n_words >= MIN_WORDS_WITHOUT_FUNCTION_WORDS and share < MIN_INDONESIAN_SHARE)
    ):
        return NOT_INDONESIAN
    return ""
