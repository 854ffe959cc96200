"""Loading the labelled training data and grouping near-duplicate texts.

The raw rows stay where they are (``settings.training_data_dir``); only their sha256 goes into a model
card. Near-duplicates (retweets with a different prefix, the same complaint re-sent with a new
mention) are grouped so cross-validation never puts one copy in training and another in test.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

TWEETS_FILE = "tweets_bandung.csv"
LAPOR_FILE = "lapor_reports.csv"
NEAR_DUPLICATE_JACCARD = 0.7

_DUP_STRIP = re.compile(r"(?:https?://\S+|@\w+|#|\brt\b)")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class LabelledSet:
    """Texts with one label column per head, a sample weight and a near-duplicate group per row."""

    name: str
    texts: list[str]
    labels: dict[str, list[str]]
    weights: np.ndarray
    groups: np.ndarray
    sources: list[str] = field(default_factory=list)

    def subset(self, head: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Rows that carry a label for ``head``: texts, labels, weights, groups."""
        idx = [i for i, label in enumerate(self.labels[head]) if label]
        return (
            [self.texts[i] for i in idx],
            np.array([self.labels[head][i] for i in idx], dtype=object),
            self.weights[idx],
            self.groups[idx],
        )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dedup_key_tokens(text: str) -> list[str]:
    """Words that identify a text for near-duplicate grouping (no mentions, URLs, RT)."""
    return _WORD.findall(_DUP_STRIP.sub(" ", text.lower()))


def near_duplicate_groups(texts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> np.ndarray:
    """Group id per text: connected components of word-set Jaccard >= threshold (or equal texts)."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for token in set(dedup_key_tokens(text)):
            rows.append(i)
            cols.append(vocab.setdefault(token, len(vocab)))
    n = len(texts)
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, max(len(vocab), 1)))
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    overlap = (matrix @ matrix.T).tocoo()
    keep = overlap.row < overlap.col
    r, c, inter = overlap.row[keep], overlap.col[keep], overlap.data[keep]
    union = sizes[r] + sizes[c] - inter
    similar = np.where(union > 0, inter / np.maximum(union, 1), 0) >= threshold
    both_empty = (sizes[r] == 0) & (sizes[c] == 0)
    link = sparse.coo_matrix((np.ones(int(similar.sum())), (r[similar], c[similar])), shape=(n, n))
    _, labels = sparse.csgraph.connected_components(link, directed=False)
    del both_empty
    return labels


def load_tweets(data_dir: Path) -> LabelledSet:
    """The Bandung tweets: relevance for all rows, topic for complaints."""
    with (data_dir / TWEETS_FILE).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [r["text"] for r in rows]
    relevance = [r["relevance"] for r in rows]
    topic = [r["topic"] if r["relevance"] == "keluhan" else "" for r in rows]
    copies = np.array([max(int(r.get("copies") or 1), 1) for r in rows], dtype=float)
    return LabelledSet(
        name="tweets",
        texts=texts,
        labels={"relevance": relevance, "topic": topic, "agency": [""] * len(rows)},
        weights=copies,
        groups=near_duplicate_groups(texts),
        sources=["tweets"] * len(rows),
    )


def lapor_text(title: str, body: str) -> str:
    """How a LAPOR! report is presented to the classifier: title, then body."""
    return f"{title.strip()}. {body.strip()}" if title.strip() else body.strip()


def load_lapor(data_dir: Path) -> LabelledSet:
    """The LAPOR! reports: agency function where LAPOR! disposed the report."""
    with (data_dir / LAPOR_FILE).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [lapor_text(r["title"], r["body"]) for r in rows]
    return LabelledSet(
        name="lapor",
        texts=texts,
        labels={"relevance": [""] * len(rows), "topic": [""] * len(rows), "agency": [r["agency"] for r in rows]},
        weights=np.ones(len(rows)),
        groups=near_duplicate_groups(texts),
        sources=["lapor"] * len(rows),
    )


def data_files(data_dir: Path) -> dict[str, str]:
    """File name → sha256 of the training files used."""
    return {name: file_sha256(data_dir / name) for name in (TWEETS_FILE, LAPOR_FILE)}
