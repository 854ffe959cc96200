"""Text normalisation for Indonesian social-media posts.

URLs, @mentions, #hashtags, numbers and emoji become marker tokens (``xurl``, ``xmention``, ...) so
they stay features instead of noise; an @mention also keeps its handle (``@dbmpkotabdg`` names the
agency being addressed). Slang is mapped to formal Indonesian with the colloquial lexicon, and the
Kupang Malay overlay takes precedence over it (``pi`` is ``pergi`` in Kupang, not ``tapi``).
Every step is a parameter of :class:`TextNormalizer` so the evaluation can ablate it.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

from classifier.stemmer import shared_stemmer

LEXICON_DIR = Path(__file__).resolve().parent / "lexicons"

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_RETWEET = re.compile(r"(?:^|\s)rt\s+(?=@)", re.IGNORECASE)
_MENTION = re.compile(r"@(\w{1,30})")
_HASHTAG = re.compile(r"#(\w{1,60})")
_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U0001f900-\U0001f9ff\u2b50\u2764]"
)
_SAD_EMOTICON = re.compile(r"(?:[:;=]'?-?[(\[/\\]|T_T|:'\()")
_HAPPY_EMOTICON = re.compile(r"(?:[:;=]-?[)\]dDpP]|\^_\^)")
_REDUPLICATION = re.compile(r"\b([a-z]{2,})2\b")  # "jalan2" -> "jalan jalan"
_NUMBER_UNIT = re.compile(r"\b(\d+(?:[.,]\d+)*)\s?(km|m|cm|kg|rb|ribu|jt|juta|jam|menit|hari|persen)\b")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)*\b")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_QUESTION = re.compile(r"\?+")
_EXCLAIM = re.compile(r"!+")
_TOKEN = re.compile(r"@\w+|\w+", re.UNICODE)


def _read_pairs(name: str) -> dict[str, str]:
    text = (LEXICON_DIR / name).read_text(encoding="utf-8")
    pairs: dict[str, str] = {}
    for row in csv.DictReader(text.splitlines()):
        slang = (row.get("slang") or "").strip().lower()
        formal = (row.get("formal") or "").strip().lower()
        if slang and formal and slang not in pairs:
            pairs[slang] = formal
    return pairs


@functools.lru_cache(maxsize=1)
def colloquial_lexicon() -> dict[str, str]:
    """Slang → formal Indonesian (Salsabila et al., IALP 2018), deduplicated on slang."""
    return _read_pairs("colloquial_lexicon.csv")


@functools.lru_cache(maxsize=1)
def kupang_overlay() -> dict[str, str]:
    """Kupang Malay → formal Indonesian; overrides the colloquial lexicon."""
    return _read_pairs("kupang_overlay.csv")


@functools.lru_cache(maxsize=4)
def merged_lexicon(use_colloquial: bool = True, use_kupang: bool = True) -> dict[str, str]:
    """The lookup table actually applied: colloquial pairs, then the Kupang overlay on top."""
    merged: dict[str, str] = {}
    if use_colloquial:
        merged.update(colloquial_lexicon())
    if use_kupang:
        merged.update(kupang_overlay())
    return merged


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """Sastrawi's Indonesian stop-word list, minus negations (they carry complaint signal)."""
    from Sastrawi.StopWordRemover.StopWordRemoverFactory import StopWordRemoverFactory

    keep = {"tidak", "belum", "bukan", "jangan", "tolong", "mohon", "kapan", "kenapa", "mengapa"}
    return frozenset(StopWordRemoverFactory().get_stop_words()) - keep


_REGEX_OPTIONS = ("markers", "keep_handles", "numbers", "repeats", "punctuation")
_TOKEN_OPTIONS = ("lexicon", "kupang", "stopwords", "stem")
_TOKEN_CACHE_LIMIT = 200_000
_token_caches: dict[tuple[bool, ...], dict[str, tuple[str, ...]]] = {}


def _marker_stage(text: str, *, markers: bool, keep_handles: bool) -> str:
    """Lower-case; turn URLs, retweets, mentions, hashtags, emoji and emoticons into markers.

    Each substitution runs only when its pattern's literal character is in the post: a pattern cannot
    match without it, and skipping the scan of the whole post is most of the normaliser's speed.
    """
    text = text.lower()
    if not markers:
        return text
    if "http" in text or "www." in text:
        text = _URL.sub(" xurl ", text)
    if "rt" in text:
        text = _RETWEET.sub(" xrt ", text)
    if "@" in text:
        text = _MENTION.sub((lambda m: f" xmention @{m.group(1)} ") if keep_handles else " xmention ", text)
    if "#" in text:
        text = _HASHTAG.sub(r" xhashtag \1 ", text)
    if not text.isascii():
        text = _EMOJI.sub(" xemoji ", text)
    if ":" in text or ";" in text or "=" in text or "^" in text:
        text = _SAD_EMOTICON.sub(" xsad ", text)
        text = _HAPPY_EMOTICON.sub(" xhappy ", text)
    return text


def _rest_stage(text: str, *, numbers: bool, repeats: bool, punctuation: bool) -> list[str]:
    """Numbers (and units) as markers, "jalan2" doubled, ?/! markers, letter runs cut; then tokenise."""
    if numbers:
        text = _NUMBER_UNIT.sub(r" xnum xunit\2 ", text)
        text = _NUMBER.sub(" xnum ", text)
    if "2" in text:
        text = _REDUPLICATION.sub(r"\1 \1", text)
    if punctuation:  # questions and exclamations carry intent (asking vs complaining)
        if "?" in text:
            text = _QUESTION.sub(" xquestion ", text)
        if "!" in text:
            text = _EXCLAIM.sub(" xexclaim ", text)
    if repeats:
        text = _REPEATS.sub(r"\1", text)
    return _TOKEN.findall(text)


def _regex_stage(
    text: str, *, markers: bool, keep_handles: bool, numbers: bool, repeats: bool, punctuation: bool
) -> list[str]:
    """Lower-case, turn URLs/mentions/hashtags/emoji/numbers into markers, tokenise."""
    marked = _marker_stage(text, markers=markers, keep_handles=keep_handles)
    return _rest_stage(marked, numbers=numbers, repeats=repeats, punctuation=punctuation)


def _map_token(token: str, table: dict[str, str], drop: frozenset[str], stem: bool) -> tuple[str, ...]:
    mapped = table.get(token, token)
    out = []
    for word in mapped.split() if " " in mapped else (mapped,):
        if word in drop:
            continue
        if stem and word[0] != "@":
            word = shared_stemmer().stem(word)
        out.append(word)
    return tuple(out)


def _token_stage(tokens: list[str], *, lexicon: bool, kupang: bool, stopwords: bool, stem: bool) -> str:
    """Slang → formal (Kupang overlay first), stop-words, stemming; memoised per token and setting."""
    key = (lexicon, kupang, stopwords, stem)
    cache = _token_caches.setdefault(key, {})
    if len(cache) > _TOKEN_CACHE_LIMIT:
        cache.clear()
    table = merged_lexicon(lexicon, kupang) if (lexicon or kupang) else {}
    drop = stop_words() if stopwords else frozenset()
    out: list[str] = []
    for token in tokens:
        mapped = cache.get(token)
        if mapped is None:
            mapped = cache[token] = _map_token(token, table, drop, stem)
        out.extend(mapped)
    return " ".join(out)


def normalize_text(
    text: str,
    *,
    markers: bool = True,
    keep_handles: bool = True,
    lexicon: bool = True,
    kupang: bool = True,
    repeats: bool = True,
    numbers: bool = True,
    stopwords: bool = False,
    stem: bool = False,
    punctuation: bool = False,
) -> str:
    """Normalise one post into a space-separated token string."""
    tokens = _regex_stage(
        text, markers=markers, keep_handles=keep_handles, numbers=numbers, repeats=repeats, punctuation=punctuation
    )
    return _token_stage(tokens, lexicon=lexicon, kupang=kupang, stopwords=stopwords, stem=stem)


class NormalizedText(str):
    """A normalised post that still carries the text it came from in ``raw``.

    It *is* the normalised string, so every vectorizer reads it as before; a
    :class:`~classifier.pipeline.RawTextTfidfVectorizer` in the same pipeline reads ``raw`` instead. This
    keeps a head one ``normalize → features → model`` pipeline while its features see both views.
    """

    raw: str

    def __new__(cls, normalized: str, raw: str) -> NormalizedText:
        obj = super().__new__(cls, normalized)
        obj.raw = raw
        return obj

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        # pickle/copy call __new__ with these (a str subclass would otherwise get only the string).
        return (str(self), self.raw)


def normalize_many(texts: list[str], settings: list[dict[str, Any]]) -> list[list[str]]:
    """Normalise ``texts`` under several settings at once, sharing the regex stage where they agree."""
    regex_keys = [tuple(opts[k] for k in _REGEX_OPTIONS) for opts in settings]
    keep_raw = [bool(opts.get("keep_raw")) for opts in settings]
    outputs: list[list[str]] = [[] for _ in settings]
    for text in texts:
        marked_by_key: dict[tuple[bool, bool], str] = {}
        tokens_by_key: dict[tuple[bool, ...], list[str]] = {}
        for n, (opts, regex_key) in enumerate(zip(settings, regex_keys, strict=True)):
            tokens = tokens_by_key.get(regex_key)
            if tokens is None:
                marker_key = (opts["markers"], opts["keep_handles"])  # heads differing after it share it
                marked = marked_by_key.get(marker_key)
                if marked is None:
                    marked = marked_by_key[marker_key] = _marker_stage(
                        text, markers=opts["markers"], keep_handles=opts["keep_handles"]
                    )
                tokens = tokens_by_key[regex_key] = _rest_stage(
                    marked, numbers=opts["numbers"], repeats=opts["repeats"], punctuation=opts["punctuation"]
                )
            normalized = _token_stage(tokens, **{k: opts[k] for k in _TOKEN_OPTIONS})
            outputs[n].append(NormalizedText(normalized, text) if keep_raw[n] else normalized)
    return outputs


class TextNormalizer(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: raw posts in, normalised token strings out (stateless).

    With ``keep_raw`` every output is a :class:`NormalizedText` that also carries the raw post, for a
    head whose features include a raw-text view.
    """

    def __init__(
        self,
        markers: bool = True,
        keep_handles: bool = True,
        lexicon: bool = True,
        kupang: bool = True,
        repeats: bool = True,
        numbers: bool = True,
        stopwords: bool = False,
        stem: bool = False,
        punctuation: bool = False,
        keep_raw: bool = False,
    ) -> None:
        self.markers = markers
        self.keep_handles = keep_handles
        self.lexicon = lexicon
        self.kupang = kupang
        self.repeats = repeats
        self.numbers = numbers
        self.stopwords = stopwords
        self.stem = stem
        self.punctuation = punctuation
        self.keep_raw = keep_raw

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models saved before keep_raw existed never carried the raw text.
        super().__setstate__({"keep_raw": False, **state})

    def fit(self, X: Iterable[str], y: Any = None) -> TextNormalizer:
        """Nothing to learn; records the lexicon size so the fitted state is visible."""
        self.lexicon_size_ = len(merged_lexicon(self.lexicon, self.kupang)) if (self.lexicon or self.kupang) else 0
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        """Normalise every text."""
        return normalize_many([str(t) for t in X], [self.get_params()])[0]

    def cache_key(self) -> tuple[tuple[str, Any], ...]:
        """Identifies the output: two normalisers with equal keys produce the same text."""
        return tuple(sorted(self.get_params().items()))


class IdentityText(TransformerMixin, BaseEstimator):
    """Pass-through first step, used by the no-normalisation baseline."""

    def fit(self, X: Iterable[str], y: Any = None) -> IdentityText:
        """Nothing to learn."""
        self.fitted_ = True
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        """Return the texts as strings."""
        return [str(t) for t in X]

    def cache_key(self) -> tuple[tuple[str, Any], ...]:
        """Identifies the output (always the raw text)."""
        return (("identity", True),)
