"""Near-duplicate detection: the same complaint copy-pasted across platforms or accounts is grouped.

Text is normalised (case, URLs, @handles, ``RT`` prefixes, punctuation) and hashed twice: an exact
``content_hash`` and a 64-bit SimHash over character 4-grams. Posts within Hamming distance
:data:`MAX_DISTANCE` are near-duplicates. Lookup uses banding (LSH): the SimHash is cut into four
16-bit bands; two hashes within distance 3 share at least one band exactly (pigeonhole), so a new
post is compared only with the group roots in its four buckets (table ``post_simhash_bands``).
Only group roots are indexed, so a viral text copied a thousand times still costs one comparison.

Dedupe annotates and never deletes: the later post gets ``duplicate_of_id``, ``dup_group_id`` (the
group's first post) and a ``duplicate_reason`` a reviewer can read.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipelines.models import Post, PostSimhashBand

MAX_DISTANCE = 3
BANDS = 4
BAND_BITS = 16
MIN_CHARS = 24  # shorter texts ("mantap", "ok min") are too generic to group
MIN_TOKENS = 4
SHINGLE = 4

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"(?<!\w)@\w+")
_RT = re.compile(r"^\s*rt\s*:?\s*")
_NON_WORD = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case text without URLs, @handles, ``RT`` prefixes, punctuation or repeated spaces."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _URL.sub(" ", text)
    text = _RT.sub("", text)
    text = _HANDLE.sub(" ", text)
    text = _RT.sub("", text.strip())
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    return _SPACE.sub(" ", text).strip()


def content_hash(normalised: str) -> str:
    """SHA-256 of the normalised text."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def _feature_hashes(normalised: str) -> np.ndarray:
    # Character 4-grams: short posts have few words, and a copy with one word changed or added
    # keeps most of its 4-grams (word features move several bits per changed word).
    features = {normalised[i : i + SHINGLE] for i in range(len(normalised) - SHINGLE + 1)}
    digests = b"".join(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest() for f in features)
    return np.frombuffer(digests, dtype=">u8")


def simhash(normalised: str) -> int | None:
    """A signed 64-bit SimHash of the normalised text, or None when it is too short to compare."""
    tokens = normalised.split()
    if len(normalised) < MIN_CHARS or len(tokens) < MIN_TOKENS:
        return None
    hashes = _feature_hashes(normalised)
    bits = np.unpackbits(hashes.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)  # (n, 64), MSB first
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(hashes)
    value = 0
    for bit in np.flatnonzero(votes > 0):
        value |= 1 << (63 - int(bit))
    return value - (1 << 64) if value >= 1 << 63 else value


def bands(signed: int) -> list[int]:
    """The four band keys of a SimHash: ``(band index << 16) | 16-bit value``."""
    unsigned = signed & 0xFFFFFFFFFFFFFFFF
    return [(i << BAND_BITS) | ((unsigned >> (i * BAND_BITS)) & 0xFFFF) for i in range(BANDS)]


def distance(a: int, b: int) -> int:
    """Hamming distance between two 64-bit hashes."""
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


@dataclass
class Fingerprint:
    """What dedupe needs of a freshly stored post."""

    post_id: int
    platform: str
    content_hash: str
    simhash: int | None


@dataclass
class _Root:
    post_id: int
    simhash: int
    group_id: int | None
    content_hash: str


def annotate(*, session: Session, posts: Iterable[Fingerprint]) -> int:
    """Group each new post with an earlier near-duplicate, if any; returns how many were grouped.

    Runs in the caller's transaction (does not commit). New posts are expected in id order.
    """
    fresh = [p for p in posts if p.simhash is not None]
    if not fresh:
        return 0
    wanted = sorted({b for p in fresh for b in bands(p.simhash)})  # type: ignore[arg-type]
    buckets: dict[int, list[_Root]] = {}
    for chunk_start in range(0, len(wanted), 500):
        chunk = wanted[chunk_start : chunk_start + 500]
        rows = session.execute(
            sa.select(PostSimhashBand.band, Post.id, Post.simhash, Post.dup_group_id, Post.content_hash)
            .join(Post, Post.id == PostSimhashBand.post_id)
            .where(PostSimhashBand.band.in_(chunk))
        )
        for band, post_id, sh, group, chash in rows:
            buckets.setdefault(band, []).append(_Root(post_id, sh, group, chash))

    new_bands: list[dict[str, int]] = []
    updates: list[dict[str, object]] = []
    group_roots: dict[int, int] = {}
    grouped = 0
    for post in fresh:
        assert post.simhash is not None
        keys = bands(post.simhash)
        best: tuple[int, int, _Root] | None = None
        for key in keys:
            for root in buckets.get(key, ()):
                if root.post_id >= post.post_id:
                    continue
                d = distance(root.simhash, post.simhash)
                if d <= MAX_DISTANCE and (best is None or (d, root.post_id) < (best[0], best[1])):
                    best = (d, root.post_id, root)
        if best is None:
            root = _Root(post.post_id, post.simhash, None, post.content_hash)
            for key in keys:
                buckets.setdefault(key, []).append(root)
                new_bands.append({"band": key, "post_id": post.post_id})
            continue
        d, _, root = best
        group_id = root.group_id or root.post_id
        if root.group_id is None:
            root.group_id = group_id
            group_roots[root.post_id] = group_id
        same = root.content_hash == post.content_hash
        reason = (
            f"same text as post #{root.post_id}"
            if same
            else f"near-duplicate of post #{root.post_id} ({d} bits)"
        )
        updates.append(
            {
                "id": post.post_id,
                "dup_group_id": group_id,
                "duplicate_of_id": root.post_id,
                "duplicate_reason": reason[:200],
            }
        )
        grouped += 1
    if new_bands:
        session.execute(sa.insert(PostSimhashBand), new_bands)
    for root_id, group_id in group_roots.items():
        updates.append({"id": root_id, "dup_group_id": group_id})
    if updates:
        session.execute(sa.update(Post), updates)
    return grouped


def group_size(*, session: Session, group_id: int) -> int:
    """How many posts are in a near-duplicate group."""
    return int(
        session.scalar(sa.select(sa.func.count()).select_from(Post).where(Post.dup_group_id == group_id)) or 0
    )
