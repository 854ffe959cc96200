"""Ingest speed (parse, dedupe, store) into SQLite and PostgreSQL, and how it scales with stored posts.

Synthetic posts (Indonesian-like word salad, ~5 % copy-pasted with a small change) go through the
real ``pipelines.ingest.ingest_posts`` in pages of ``--batch`` items, each page in its own
transaction, into a freshly migrated database (a temp SQLite file; a PostgreSQL database created
and dropped by the bench). Figures (medians over pages):

- ingest rate: posts/s of the whole path (select existing, insert-on-conflict, near-dup LSH lookup);
- baseline: plain ``INSERT`` of the same rows (no lookup, no dedupe), measured in the same run;
- client CPU rate: posts per second of this process's CPU time. The machine is shared, so wall-clock
  rates swing with other people's load; for SQLite (in-process) CPU time is all the work done;
- scaling: the page time when the store holds ``--small`` posts vs ``--large`` posts. Near-duplicate
  lookup reads a few LSH buckets per post (the bench counts the stored rows the probe's buckets
  hold: the candidates), so its cost does not grow with stored posts; what remains is B-tree depth
  (log n) of the indexes every insert maintains. A lookup that scanned stored posts would grow with
  the ratio of sizes (10x).

Target (issue 4): >= 2,000 posts/s into SQLite and PostgreSQL over 100,000 posts.

    .venv/bin/python bench/bench_ingest.py            # quick: 10k vs 30k stored (about a minute)
    .venv/bin/python bench/bench_ingest.py --full     # the target run: 10k vs 100k stored
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harvester.types import RawItem  # noqa: E402
from jaring.db import make_engine  # noqa: E402
from jaring.migrate import upgrade  # noqa: E402
from jaring.settings import Settings  # noqa: E402
from pipelines import dedupe  # noqa: E402
from pipelines.ingest import ingest_posts  # noqa: E402
from pipelines.models import Post  # noqa: E402

ADMIN_URL = os.environ.get("JARING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_RATE = 2000.0
WORDS = [
    "jalan",
    "rusak",
    "air",
    "sonde",
    "mengalir",
    "sampah",
    "menumpuk",
    "lampu",
    "mati",
    "banjir",
    "got",
    "mampet",
    "puskesmas",
    "antre",
    "lama",
    "ktp",
    "dukcapil",
    "angkot",
    "macet",
    "parkir",
    "liar",
    "pasar",
    "bau",
    "busuk",
    "listrik",
    "padam",
    "sekolah",
    "guru",
    "bantuan",
    "sosial",
    "tolong",
    "segera",
    "pak",
    "bu",
    "min",
    "sudah",
    "minggu",
    "bulan",
    "hari",
    "warga",
    "kami",
    "katong",
    "beta",
    "su",
    "pi",
    "pung",
    "oebobo",
    "alak",
    "maulafa",
    "oesapa",
    "liliba",
    "naikoten",
    "fatululi",
    "sikumana",
    "penfui",
    "kolhua",
    "bakunase",
    "oeba",
    "solor",
    "airmata",
    "lasiana",
    "kupang",
]


def synthetic_items(n: int, seed: int, prefix: str) -> list[RawItem]:
    """``n`` synthetic posts; about 5 % are copies (one word added) of an earlier one."""
    rng = random.Random(seed)
    vocab = WORDS + [f"kata{i}" for i in range(5000)]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    items: list[RawItem] = []
    texts: list[str] = []
    for i in range(n):
        if texts and rng.random() < 0.05:
            text = rng.choice(texts) + " " + rng.choice(WORDS)
        else:
            text = " ".join(rng.choice(vocab) for _ in range(rng.randint(8, 40)))
            texts.append(text)
        platform = ("twitter", "facebook", "instagram")[i % 3]
        external_id = f"{prefix}{i}"
        items.append(
            RawItem(
                platform=platform,
                external_id=external_id,
                kind="post",
                text=text,
                created_at=start + timedelta(seconds=i),
                author_id=f"u{i % 997}",
                author_handle=f"warga{i % 997}",
                url=f"https://example.invalid/{external_id}",
                raw={"id": external_id, "text": text, "author": {"id": f"u{i % 997}"}},
            )
        )
    return items


CPU_SECONDS: list[float] = []  # this process's CPU time per call (excludes a PostgreSQL server's)
PAGE_CPU: list[float] = []  # this process's CPU time per page (SQLite: all the work, it runs in-process)


def ingest_pages(
    url: str, items: list[RawItem], batch: int, settings: Settings, dedupe: bool = True
) -> list[float]:
    """Ingest ``items`` page by page (a transaction each); returns each page's seconds."""
    engine = make_engine(url)
    times = []
    cpu_began = time.process_time()
    try:
        for start in range(0, len(items), batch):
            page = items[start : start + batch]
            began, cpu = time.perf_counter(), time.process_time()
            with Session(engine) as session:
                ingest_posts(
                    session=session,
                    source_key="bench",
                    items=page,
                    settings=settings,
                    detect_duplicates=dedupe,
                )
                session.commit()
            times.append(time.perf_counter() - began)
            PAGE_CPU.append(time.process_time() - cpu)
    finally:
        engine.dispose()
    CPU_SECONDS.append(time.process_time() - cpu_began)
    return times


def baseline_pages(url: str, items: list[RawItem], batch: int) -> list[float]:
    """Plain INSERT of the same rows (no lookup, no dedupe); returns each page's seconds."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    times = []
    try:
        for start in range(0, len(items), batch):
            rows: list[dict[str, Any]] = [
                {
                    "platform": i.platform,
                    "external_id": i.external_id,
                    "kind": i.kind,
                    "source_key": "bench",
                    "author_id": i.author_id,
                    "author_handle": i.author_handle,
                    "author_name": "",
                    "text": i.text,
                    "lang": "",
                    "url": i.url,
                    "media": [],
                    "referenced": [],
                    "created_at": i.created_at,
                    "harvested_at": now,
                    "updated_at": now,
                    "version": 1,
                    "raw": i.raw,
                    "content_hash": "",
                    "duplicate_reason": "",
                    "status": "new",
                    "priority": 0.0,
                }
                for i in items[start : start + batch]
            ]
            began = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(sa.insert(Post), rows)
            times.append(time.perf_counter() - began)
    finally:
        engine.dispose()
    return times


def bucket_rows(url: str, items: list[RawItem]) -> int:
    """How many stored band rows the near-duplicate lookup of ``items`` reads (its candidates)."""
    keys: set[int] = set()
    for item in items:
        fingerprint = dedupe.fingerprint(dedupe.normalise(item.text))
        if fingerprint.signature is not None:
            keys.update(dedupe.band_keys(fingerprint.signature))
    ordered = sorted(keys)
    engine = make_engine(url)
    total = 0
    with engine.connect() as conn:
        for start in range(0, len(ordered), 500):
            total += conn.scalar(  # type: ignore[operator]
                sa.select(sa.func.count())
                .select_from(dedupe.BANDS_TABLE)
                .where(dedupe.BANDS_TABLE.c.band.in_(ordered[start : start + 500]))
            )
    engine.dispose()
    return total


def analyze(url: str) -> None:
    """Refresh planner statistics, as autovacuum does on a database in steady use.

    A table that grew from nothing to 100k rows in a minute still has "empty table" statistics,
    and PostgreSQL then plans index lookups as scans; a production store has current statistics.
    """
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def rate(times: list[float], batch: int) -> float:
    """Posts per second from the median page time."""
    return batch / statistics.median(times)


def bench_backend(name: str, make_db: Any, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    probe = synthetic_items(args.probe_pages * args.batch, seed=99, prefix="probe-small-")
    probe_large = synthetic_items(args.probe_pages * args.batch, seed=98, prefix="probe-large-")
    # The same path without the near-duplicate step, at both sizes: how much of any growth is dedupe's.
    plain_small = synthetic_items(args.probe_pages * args.batch, seed=97, prefix="plain-small-")
    plain_large = synthetic_items(args.probe_pages * args.batch, seed=96, prefix="plain-large-")
    fill_small = synthetic_items(args.small, seed=1, prefix="a-")
    fill_large = synthetic_items(args.large - args.small - 2 * len(probe), seed=2, prefix="b-")

    CPU_SECONDS.clear()
    with make_db() as url:
        began = time.perf_counter()
        fill_times = ingest_pages(url, fill_small, args.batch, settings)
        analyze(url)
        small_candidates = bucket_rows(url, probe)
        PAGE_CPU.clear()
        small_times = ingest_pages(url, probe, args.batch, settings)
        small_cpu = list(PAGE_CPU)
        plain_small_times = ingest_pages(url, plain_small, args.batch, settings, dedupe=False)
        fill_times += ingest_pages(url, fill_large, args.batch, settings)
        analyze(url)
        large_candidates = bucket_rows(url, probe_large)
        PAGE_CPU.clear()
        large_times = ingest_pages(url, probe_large, args.batch, settings)
        large_cpu = list(PAGE_CPU)
        plain_large_times = ingest_pages(url, plain_large, args.batch, settings, dedupe=False)
        total_seconds = time.perf_counter() - began
        engine = make_engine(url)
        with engine.connect() as conn:
            stored = int(conn.scalar(sa.select(sa.func.count()).select_from(Post)) or 0)
            grouped = conn.scalar(
                sa.select(sa.func.count()).select_from(Post).where(Post.duplicate_of_id.is_not(None))
            )
        engine.dispose()
    with make_db() as url:
        base_times = baseline_pages(url, synthetic_items(args.small, seed=1, prefix="a-"), args.batch)

    all_times = fill_times + small_times + large_times
    result = {
        "backend": name,
        "stored_posts": stored,
        "near_duplicates_grouped": grouped,
        "batch": args.batch,
        "ingest_rate_median_posts_s": round(rate(all_times, args.batch)),
        "ingest_rate_overall_posts_s": round(stored / total_seconds),
        "ingest_rate_client_cpu_posts_s": round(stored / sum(CPU_SECONDS)),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "baseline_plain_insert_posts_s": round(rate(base_times, args.batch)),
        "ratio_ingest_vs_plain_insert": round(rate(all_times, args.batch) / rate(base_times, args.batch), 3),
        f"page_ms_median_at_{args.small}": round(statistics.median(small_times) * 1000, 2),
        f"page_ms_median_at_{args.large}": round(statistics.median(large_times) * 1000, 2),
        "scaling_ratio_large_vs_small": round(
            statistics.median(large_times) / statistics.median(small_times), 3
        ),
        f"near_dup_candidates_read_by_probe_at_{args.small}": small_candidates,
        f"near_dup_candidates_read_by_probe_at_{args.large}": large_candidates,
        "scaling_ratio_without_dedupe": round(
            statistics.median(plain_large_times) / statistics.median(plain_small_times), 3
        ),
        f"page_cpu_ms_median_at_{args.small}": round(statistics.median(small_cpu) * 1000, 2),
        f"page_cpu_ms_median_at_{args.large}": round(statistics.median(large_cpu) * 1000, 2),
        "scaling_ratio_cpu_large_vs_small": round(
            statistics.median(large_cpu) / statistics.median(small_cpu), 3
        ),
        "store_size_ratio": round(args.large / args.small, 1),
        "meets_2000_posts_s_wall": rate(all_times, args.batch) >= TARGET_RATE,
        "meets_2000_posts_s_client_cpu": stored / sum(CPU_SECONDS) >= TARGET_RATE,
    }
    return result


class SqliteDb:
    def __enter__(self) -> str:
        self.dir = tempfile.TemporaryDirectory(prefix="bench-ingest-")
        url = f"sqlite:///{self.dir.name}/bench.sqlite"
        upgrade(url)
        return url

    def __exit__(self, *exc: object) -> None:
        self.dir.cleanup()


class PostgresDb:
    def __enter__(self) -> str:
        self.admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.name = f"jaring_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        url = self.admin.url.set(database=self.name).render_as_string(hide_password=False)
        upgrade(url)
        return url

    def __exit__(self, *exc: object) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="10k vs 100k stored posts (the target run)")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=None)
    parser.add_argument("--batch", type=int, default=500, help="posts per page/transaction")
    parser.add_argument("--probe-pages", type=int, default=7)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    if args.large is None:
        args.large = 100_000 if args.full else 30_000
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    results = []
    if args.backend in ("sqlite", "both"):
        results.append(bench_backend("sqlite", SqliteDb, args))
        print(json.dumps(results[-1]), flush=True)
    if args.backend in ("postgres", "both"):
        try:
            results.append(bench_backend("postgresql", PostgresDb, args))
            print(json.dumps(results[-1]), flush=True)
        except sa.exc.OperationalError as exc:
            print(json.dumps({"backend": "postgresql", "skipped": str(exc).splitlines()[0]}))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_ingest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
