"""Near-duplicate detection: the same complaint copy-pasted across platforms or accounts is grouped.

Text is normalised (case, URLs, @handles, ``RT`` prefixes, punctuation). Two posts are
near-duplicates when the Jaccard similarity of their word-bigram sets is at least
:data:`MIN_SIMILARITY` (a copy with a word added, dropped or changed stays well above it).

Lookup must not grow with the number of stored posts, so it uses MinHash with LSH banding: a
64-value MinHash signature is cut into 16 bands of 4 values; each band is hashed to a 32-bit
bucket key stored in ``post_simhash_bands``. Similar posts share a bucket with high probability
(J=0.75: >99.99 %, J=0.6: 89 %); unrelated posts almost never do, so a new post is compared
only with the handful of posts in its 16 buckets, checked exactly on their text. Only group roots
are indexed, so a text copied a thousand times still costs one comparison.

``posts.simhash`` keeps a 64-bit SimHash of the text as a compact fingerprint (``content_hash``
is the exact one). Dedupe annotates and never deletes: the later post gets ``duplicate_of_id``,
``dup_group_id`` (the group's first post) and a ``duplicate_reason`` a reviewer can read.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from jaring.db import membership_conditions
from pipelines.models import Post, PostSimhashBand

MIN_SIMILARITY = 0.6
MIN_TOKENS = 5  # shorter texts ("mantap", "ok min siap") are too generic to group
NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
_PRIME = (1 << 31) - 1
_rng = np.random.default_rng(20261127)  # fixed: band keys are stored, they must never change
_A = _rng.integers(1, _PRIME, NUM_PERM, dtype=np.int64)
_B = _rng.integers(0, _PRIME, NUM_PERM, dtype=np.int64)
_BAND_MULT = _rng.integers(1, 1 << 62, ROWS, dtype=np.int64).astype(np.uint64) | np.uint64(1)
_BAND_SALT = _rng.integers(1, 1 << 62, BANDS, dtype=np.int64).astype(np.uint64)
BANDS_TABLE: sa.Table = PostSimhashBand.__table__  # type: ignore[assignment]
POSTS_TABLE: sa.Table = Post.__table__  # type: ignore[assignment]

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"(?<!\w)@[\w.]+")
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


def shingles(normalised: str) -> set[str]:
    """Word bigrams of the normalised text (empty when the text is too short to judge)."""
    tokens = normalised.split()
    if len(tokens) < MIN_TOKENS:
        return set()
    return {f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)}


def _hash64(values: list[str]) -> np.ndarray:
    digests = b"".join(hashlib.blake2b(v.encode("utf-8"), digest_size=8).digest() for v in values)
    return np.frombuffer(digests, dtype="<u8")


def minhash(shingle_set: set[str], hashed: np.ndarray | None = None) -> np.ndarray | None:
    """The MinHash signature (64 values) of a shingle set, or None for an empty set."""
    if not shingle_set:
        return None
    if hashed is None:
        hashed = _hash64(sorted(shingle_set))
    low = (hashed & 0xFFFFFFFF).astype(np.int64)
    return ((np.outer(low, _A) + _B) % _PRIME).min(axis=0)


@dataclass
class TextFingerprint:
    """Everything dedupe derives from one normalised text, computed with one hash per shingle."""

    shingles: set[str]
    signature: np.ndarray | None
    simhash: int | None


def fingerprint(normalised: str) -> TextFingerprint:
    """Shingles, MinHash signature and SimHash of a normalised text."""
    sh = shingles(normalised)
    if not sh:
        return TextFingerprint(sh, None, None)
    hashed = _hash64(sorted(sh))
    return TextFingerprint(sh, minhash(sh, hashed), _simhash_from(hashed))


def _simhash_from(hashed: np.ndarray) -> int:
    bits = np.unpackbits(hashed.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(hashed)
    value = int.from_bytes(np.packbits(votes > 0).tobytes(), "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def band_keys(signature: np.ndarray) -> list[int]:
    """The 16 LSH bucket keys (signed 32-bit) of a signature: a universal hash of each band's values."""
    rows = signature.reshape(BANDS, ROWS).astype(np.uint64)
    mixed = (rows * _BAND_MULT).sum(axis=1) + _BAND_SALT  # wraps mod 2**64 by design
    folded = (mixed ^ (mixed >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    return [int(v) - (1 << 32) if v >= 1 << 31 else int(v) for v in folded.tolist()]


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 0.0


def simhash(normalised: str) -> int | None:
    """A signed 64-bit SimHash over the word bigrams (a compact fingerprint), or None if too short."""
    return fingerprint(normalised).simhash


def distance(a: int, b: int) -> int:
    """Hamming distance between two 64-bit hashes."""
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


@dataclass
class Fingerprint:
    """What dedupe needs of a freshly stored post."""

    post_id: int
    platform: str
    content_hash: str
    normalised: str
    fingerprint: TextFingerprint | None = None


@dataclass
class _Root:
    post_id: int
    shingles: set[str]
    group_id: int | None
    content_hash: str


def annotate(*, session: Session, posts: Iterable[Fingerprint]) -> int:
    """Group each new post with an earlier near-duplicate, if any; returns how many were grouped.

    Runs in the caller's transaction (does not commit). New posts are expected in id order.
    """
    fresh = []
    for post in posts:
        fp = post.fingerprint or fingerprint(post.normalised)
        if fp.signature is not None:
            fresh.append((post, fp.shingles, band_keys(fp.signature)))
    if not fresh:
        return 0
    wanted = sorted({k for _, _, keys in fresh for k in keys})
    candidates: dict[int, list[int]] = {}
    roots: dict[int, _Root] = {}
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    for condition in membership_conditions(conn, BANDS_TABLE.c.band, wanted, sa.Integer()):
        matches = conn.execute(
            sa.select(
                BANDS_TABLE.c.band,
                POSTS_TABLE.c.id,
                POSTS_TABLE.c.text,
                POSTS_TABLE.c.dup_group_id,
                POSTS_TABLE.c.content_hash,
            )
            .join(POSTS_TABLE, POSTS_TABLE.c.id == BANDS_TABLE.c.post_id)
            .where(condition)
        )
        for band, post_id, text, group, chash in matches:
            candidates.setdefault(band, []).append(post_id)
            if post_id not in roots:
                roots[post_id] = _Root(post_id, shingles(normalise(text)), group, chash)

    new_bands: list[dict[str, int]] = []
    updates: list[dict[str, object]] = []
    group_roots: dict[int, int] = {}
    grouped = 0
    for post, sh, keys in fresh:
        best: tuple[float, int] | None = None
        for key in keys:
            for root_id in candidates.get(key, ()):
                if root_id >= post.post_id:
                    continue
                similarity = jaccard(sh, roots[root_id].shingles)
                if similarity >= MIN_SIMILARITY and (
                    best is None or (-similarity, root_id) < (-best[0], best[1])
                ):
                    best = (similarity, root_id)
        if best is None:
            roots[post.post_id] = _Root(post.post_id, sh, None, post.content_hash)
            for key in set(keys):
                candidates.setdefault(key, []).append(post.post_id)
                new_bands.append({"band": key, "post_id": post.post_id})
            continue
        similarity, root_id = best
        root = roots[root_id]
        group_id = root.group_id or root.post_id
        if root.group_id is None:
            root.group_id = group_id
            group_roots[root.post_id] = group_id
        if root.content_hash == post.content_hash:
            reason = f"same text as post #{root.post_id}"
        else:
            reason = f"near-duplicate of post #{root.post_id} ({similarity:.0%} similar)"
        updates.append(
            {
                "id": post.post_id,
                "dup_group_id": group_id,
                "duplicate_of_id": root.post_id,
                "duplicate_reason": reason,
            }
        )
        grouped += 1
    if new_bands and postgres:
        # One statement with two arrays instead of a row-by-row executemany (16 rows per new group).
        conn.execute(
            sa.text(
                "INSERT INTO post_simhash_bands (band, post_id) SELECT * FROM unnest(:bands, :ids)"
            ).bindparams(
                sa.bindparam("bands", type_=postgresql.ARRAY(sa.Integer)),
                sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger)),
            ),
            {"bands": [b["band"] for b in new_bands], "ids": [b["post_id"] for b in new_bands]},
        )
    elif new_bands:
        conn.execute(sa.insert(BANDS_TABLE), new_bands)
    changes: list[dict[str, object]] = [
        {"b_id": root_id, "b_group": group} for root_id, group in group_roots.items()
    ]
    changes += [
        {
            "b_id": u["id"],
            "b_group": u["dup_group_id"],
            "b_of": u["duplicate_of_id"],
            "b_reason": u["duplicate_reason"],
        }
        for u in updates
    ]
    # Sorted by id so concurrent workers lock rows in the same order.
    changes.sort(key=lambda r: int(str(r["b_id"])))
    roots_only = [r for r in changes if "b_of" not in r]
    members = [r for r in changes if "b_of" in r]
    if roots_only:
        conn.execute(
            sa.update(POSTS_TABLE)
            .where(POSTS_TABLE.c.id == sa.bindparam("b_id"))
            .values(dup_group_id=sa.bindparam("b_group")),
            roots_only,
        )
    if members:
        conn.execute(
            sa.update(POSTS_TABLE)
            .where(POSTS_TABLE.c.id == sa.bindparam("b_id"))
            .values(
                dup_group_id=sa.bindparam("b_group"),
                duplicate_of_id=sa.bindparam("b_of"),
                duplicate_reason=sa.bindparam("b_reason"),
            ),
            members,
        )
    return grouped


def group_size(*, session: Session, group_id: int) -> int:
    """How many posts are in a near-duplicate group."""
    count = session.scalar(sa.select(sa.func.count()).select_from(Post).where(Post.dup_group_id == group_id))
    return int(count or 0)
