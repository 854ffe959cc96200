"""Classifier speed: end-to-end posts/s on fresh text vs naive per-post Sastrawi, train time, worker RSS.

Run: ``.venv/bin/python bench/bench_classifier.py`` (``--quick`` for a short run, ``--skip-train`` to
leave out the training timing). Every figure is a median of repeated runs, and the naive pipeline is
measured in the same run so the speed-up is a ratio, not an absolute number from another machine.

"Fresh" text: real training tweets with a few invented words spliced in (names, typos, slang the
stemmer has never seen), regenerated for every repetition so no cache has seen them.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from classifier.normalize import normalize_text  # noqa: E402
from classifier.registry import load_current  # noqa: E402
from jaring.settings import get_settings  # noqa: E402

RSS_SNIPPET = """
import sys
sys.path.insert(0, {repo!r})
from classifier.registry import load_current
model = load_current({models!r})
model.predict(["jalan rusak di oebobo tolong diperbaiki"] * 64)
model.explain("jalan rusak di oebobo tolong diperbaiki")
# VmHWM: this process's peak RSS (ru_maxrss would also count the parent's memory at fork time).
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


def _invented_word(rng: random.Random) -> str:
    consonants, vowels = "bcdfghjklmnprstw", "aeiou"
    word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
    return word + rng.choice(["", "nya", "kan", "an", "h", "ng"])


def fresh_posts(base: list[str], n: int, seed: int) -> list[str]:
    """``n`` posts: real tweet text with three never-seen words spliced in."""
    rng = random.Random(seed)
    posts = []
    for _ in range(n):
        words = rng.choice(base).split()
        for _ in range(3):
            words.insert(rng.randint(0, len(words)), _invented_word(rng) + rng.choice(string.ascii_lowercase))
        posts.append(" ".join(words))
    return posts


def median_rate(run, repeats: int) -> tuple[float, list[float]]:
    """Median items/s over ``repeats`` calls of ``run(i) -> (items, seconds)``."""
    rates = []
    for i in range(repeats):
        items, seconds = run(i)
        rates.append(items / seconds)
    return statistics.median(rates), rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4000, help="posts per repetition (ours)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-posts", type=int, default=8, help="posts for the naive pipeline (slow!)")
    parser.add_argument("--quick", action="store_true", help="fewer posts, one naive repetition")
    parser.add_argument("--skip-train", action="store_true", help="do not time training")
    args = parser.parse_args()
    if args.quick:
        args.posts, args.naive_posts = 1000, 4
    settings = get_settings()
    models_dir = settings.models_dir
    with (settings.training_data_dir / "tweets_bandung.csv").open(encoding="utf-8", newline="") as handle:
        base = [row["text"] for row in csv.DictReader(handle)]

    started = time.perf_counter()
    model = load_current(models_dir)
    load_seconds = time.perf_counter() - started
    model.predict(base[:200])  # warm-up: lexicons, lazily built tables
    print(f"model {model.version}: loaded in {load_seconds:.2f} s, {len(base)} base tweets")
    configs = {head: pipe.steps[0][1].get_params() for head, pipe in model.heads.items()}
    print(f"normalisers as shipped: {configs}")

    def ours(i: int) -> tuple[int, float]:
        posts = fresh_posts(base, args.posts, seed=1000 + i)
        t = time.perf_counter()
        model.predict(posts)
        return len(posts), time.perf_counter() - t

    def ours_with_stemming(i: int) -> tuple[int, float]:
        posts = fresh_posts(base, args.posts, seed=2000 + i)
        t = time.perf_counter()
        normalised = [normalize_text(p, stem=True) for p in posts]
        for pipe in model.heads.values():
            pipe.named_steps["model"].predict(pipe.named_steps["features"].transform(normalised))
        return len(posts), time.perf_counter() - t

    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    def naive(i: int) -> tuple[int, float]:
        posts = fresh_posts(base, args.naive_posts, seed=3000 + i)
        stemmer = StemmerFactory().create_stemmer()
        t = time.perf_counter()
        stemmed = [stemmer.stem(p) for p in posts]
        for pipe in model.heads.values():
            pipe.predict(stemmed)
        return len(posts), time.perf_counter() - t

    ours_rate, ours_runs = median_rate(ours, args.repeats)
    stem_rate, stem_runs = median_rate(ours_with_stemming, args.repeats)
    naive_rate, naive_runs = median_rate(naive, 1 if args.quick else 2)
    print(f"ours, as shipped (normalise + predict 3 heads): median {ours_rate:,.0f} posts/s  runs={[round(r) for r in ours_runs]}")
    print(f"normaliser with bounded stemmer for all heads (no guard, raw arrays): median {stem_rate:,.0f} posts/s  runs={[round(r) for r in stem_runs]}")
    print(f"naive (Sastrawi per post + 3 heads, {args.naive_posts} posts): median {naive_rate:.2f} posts/s  runs={[round(r, 2) for r in naive_runs]}")
    print(f"ratio ours/naive: {ours_rate / naive_rate:,.0f}x   with stemming: {stem_rate / naive_rate:,.0f}x")
    print(f"target >= 2,000 posts/s on one core: {'met' if min(ours_rate, stem_rate) >= 2000 else 'NOT met'}")

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", RSS_SNIPPET.format(repo=str(REPO), models=str(models_dir))],
                         capture_output=True, text=True, env=env, check=True)
    rss_mb = int(out.stdout.strip().splitlines()[-1]) / 1024
    print(f"worker peak RSS (VmHWM) with the model loaded: {rss_mb:.0f} MB (target < 400 MB)")

    if not args.skip_train:
        from classifier.training import train_model

        t = time.perf_counter()
        _, card = train_model(data_dir=settings.training_data_dir, cv_folds=0)
        total = time.perf_counter() - t
        print(f"training all heads (no CV): {total:.1f} s incl. loading data, fit {card['fit_seconds']} s (target < 120 s)")


if __name__ == "__main__":
    main()
