"""Inbox speed with many posts in PostgreSQL: first page, a filter change, search, a deep page.

Seeds N posts (default 100,000; ``--full`` for 1,000,000) with one ``INSERT ... SELECT
generate_series`` into a dedicated database it creates and drops, then measures the server time
(``Server-Timing`` header, median of repeated requests) of the real web app's inbox. The baseline,
measured in the same run, is the same deep page reached with naive ``OFFSET`` pagination instead
of the keyset cursor the app uses. Target (issue 5): first page and a filter change < 150 ms median.

    .venv/bin/python bench/bench_inbox.py            # quick: 100k posts
    .venv/bin/python bench/bench_inbox.py --full     # 1M posts
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jaring.migrate import upgrade  # noqa: E402
from jaring.settings import Settings  # noqa: E402
from pipelines.models import Post, User  # noqa: E402
from review.auth import hash_password  # noqa: E402

ADMIN_URL = os.environ.get("JARING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_MS = 150.0

# Static SQL: every value derives from the series number, so a run is reproducible. No user input.
SEED_SQL = """
INSERT INTO posts (platform, external_id, kind, source_key, author_id, author_handle, author_name, text, lang, url,
    media, referenced, created_at, harvested_at, updated_at, version, raw, content_hash, duplicate_reason, status,
    relevance, relevance_score, topic, topic_score, agency, agency_score, priority, kecamatan, dup_group_id)
SELECT
    (ARRAY['twitter','facebook','instagram'])[1 + i % 3],
    'bench-' || i, 'post', 'bench', 'u' || (i % 5000), 'warga' || (i % 5000), 'Warga ' || (i % 5000),
    (ARRAY['Jalan rusak di','Air sonde mengalir di','Sampah menumpuk di','Lampu jalan mati di',
           'Antrean KTP lama di','Banjir lagi di','Selamat pagi dari','Puskesmas tutup di'])[1 + i % 8]
        || ' ' || (ARRAY['Oebobo','Maulafa','Alak','Kelapa Lima','Kota Raja','Kota Lama'])[1 + (i / 7) % 6]
        || ', mohon ditindaklanjuti. #' || i,
    'id', 'https://example.invalid/p/' || i, '[]', '[]',
    now() - (i % 365) * interval '1 day' - (i % 86400) * interval '1 second',
    now() - (i % 365) * interval '1 day', now(), 1, '{}', md5(i::text), '',
    CASE WHEN i % 10 < 6 THEN 'queued' WHEN i % 10 < 8 THEN 'rejected' WHEN i % 10 < 9 THEN 'confirmed'
         ELSE 'forwarded' END,
    (ARRAY['keluhan','keluhan','bukan','respon'])[1 + i % 4],
    ((i::bigint * 7919) % 1000) / 1000.0,
    (ARRAY['perhubungan','infrastruktur','ketertiban_kebersihan','air_sda','lainnya','lingkungan_hidup',
           'kriminalitas','sampah','adminduk','pendidikan','perizinan','kesehatan'])[1 + (i / 3) % 12],
    0.5 + ((i * 31) % 500) / 1000.0,
    (ARRAY['PUPR','PERHUBUNGAN','DUKCAPIL','KEWILAYAHAN','SOSIAL','LINGKUNGAN_HIDUP','PEMDA_UMUM','PERIZINAN',
           'KESEHATAN','PENDIDIKAN','AIR_MINUM','SATPOLPP','BENCANA_DAMKAR'])[1 + (i / 5) % 13],
    0.4 + ((i * 17) % 600) / 1000.0,
    ((i::bigint * 104729) % 100000) / 100000.0,
    (ARRAY['Alak','Kelapa Lima','Kota Lama','Kota Raja','Maulafa','Oebobo'])[1 + (i / 7) % 6],
    CASE WHEN i % 50 = 0 THEN i - (i % 1000) + 1 ELSE NULL END
FROM generate_series(1, :n) AS s(i)
"""

# Every decided post gets the review that decided it, 1-48 hours after capture (for the dashboard).
REVIEWS_SQL = """
INSERT INTO reviews (post_id, decision, note, created_at)
SELECT id, CASE status WHEN 'rejected' THEN 'not_complaint' ELSE 'confirm' END, '',
       harvested_at + (1 + id % 48) * interval '1 hour'
FROM posts WHERE status IN ('confirmed', 'rejected', 'forwarded')
"""


def _server_ms(response: object) -> float:
    header = response.headers.get("server-timing", "")  # type: ignore[attr-defined]
    match = re.search(r"dur=([\d.]+)", header)
    if not match or response.status_code != 200:  # type: ignore[attr-defined]
        raise RuntimeError(f"bad response {response.status_code}: {header}")  # type: ignore[attr-defined]
    return float(match.group(1))


def measure(client: object, path: str, repeat: int) -> float:
    """Median server time of GET ``path`` after two warm-ups."""
    for _ in range(2):
        _server_ms(client.get(path))  # type: ignore[attr-defined]
    return statistics.median(_server_ms(client.get(path)) for _ in range(repeat))  # type: ignore[attr-defined]


def run(n: int, repeat: int) -> dict[str, Any]:
    """Seed ``n`` posts into a fresh database, measure, drop the database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from review.app import create_app

    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jaring_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    results: dict[str, Any] = {"posts": n, "repeat": repeat}
    try:
        upgrade(url)
        engine = sa.create_engine(url)
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(SEED_SQL), {"n": n})
            conn.execute(sa.text(REVIEWS_SQL))
            conn.execute(sa.insert(User).values(username="bench", full_name="", password_hash=hash_password("bench-pass-123"),
                                                role="reviewer", is_active=True, created_at=sa.func.now()))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE posts"))
            conn.execute(sa.text("VACUUM ANALYZE reviews"))
        results["seed_seconds"] = round(time.perf_counter() - started, 1)

        app = create_app(Settings(database_url=url, environment="test", secret_key=SecretStr("bench-" + "x" * 40)))
        with TestClient(app) as client:
            page = client.get("/masuk").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            client.post("/masuk", data={"username": "bench", "password": "bench-pass-123", "csrf_token": token})
            results["first_page_ms"] = measure(client, "/kotak-masuk", repeat)
            results["filter_topic_kecamatan_ms"] = measure(
                client, "/kotak-masuk?topic=kesehatan&kecamatan=Alak", repeat)
            results["filter_agency_rare_ms"] = measure(client, "/kotak-masuk?agency=BENCANA_DAMKAR", repeat)
            results["filter_platform_score_ms"] = measure(
                client, "/kotak-masuk?platform=instagram&skor_min=0.8", repeat)
            results["filter_score_empty_ms"] = measure(client, "/kotak-masuk?skor_min=0.9995", repeat)
            results["filter_date_range_ms"] = measure(
                client, "/kotak-masuk?dari=2026-01-01&sampai=2026-01-07", repeat)
            results["search_common_ms"] = measure(client, "/kotak-masuk?q=banjir", repeat)
            results["search_no_match_ms"] = measure(client, "/kotak-masuk?q=zzqxj", repeat)  # trigram index

            # Informational (no target): the leaders' dashboard over the last 30 days and a full year.
            results["dashboard_30d_ms"] = measure(client, "/dasbor", max(3, repeat // 3))
            results["dashboard_365d_ms"] = measure(client, "/dasbor?dari=2025-12-01&sampai=2026-11-30",
                                                   max(3, repeat // 3))

            # Deep page: keyset cursor (what the app does) vs OFFSET (the baseline), same rows.
            depth = min(n // 4, 20_000)
            with engine.connect() as conn:
                priority, post_id = conn.execute(
                    sa.select(Post.priority, Post.id).where(Post.status == "queued")
                    .order_by(Post.priority.desc(), Post.id.desc()).offset(depth - 1).limit(1)).one()
            from review.inbox import encode_cursor

            results["deep_page_keyset_ms"] = measure(client, f"/kotak-masuk?setelah={encode_cursor(priority, post_id)}",
                                                     repeat)
            results["deep_page_offset_baseline_ms"] = _offset_baseline(engine, depth, repeat)
            results["deep_page_keyset_query_ms"] = _keyset_query(engine, priority, post_id, repeat)
            results["depth"] = depth
        app.state.engine.dispose()
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    results["target_ms"] = TARGET_MS
    results["first_page_ok"] = results["first_page_ms"] < TARGET_MS
    results["filter_change_ok"] = results["filter_topic_kecamatan_ms"] < TARGET_MS
    results["speedup_keyset_vs_offset_query"] = round(
        results["deep_page_offset_baseline_ms"] / results["deep_page_keyset_query_ms"], 1)
    return results


def _timed(engine: sa.Engine, query: sa.Select[Any], repeat: int) -> float:
    times = []
    with engine.connect() as conn:
        for i in range(repeat + 2):
            started = time.perf_counter()
            conn.execute(query).all()
            if i >= 2:
                times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _offset_baseline(engine: sa.Engine, depth: int, repeat: int) -> float:
    query = (sa.select(Post).where(Post.status == "queued").order_by(Post.priority.desc(), Post.id.desc())
             .offset(depth).limit(51))
    return _timed(engine, query, repeat)


def _keyset_query(engine: sa.Engine, priority: float, post_id: int, repeat: int) -> float:
    query = (sa.select(Post).where(Post.status == "queued",
                                   sa.tuple_(Post.priority, Post.id) < sa.tuple_(priority, post_id))
             .order_by(Post.priority.desc(), Post.id.desc()).limit(51))
    return _timed(engine, query, repeat)


def main() -> None:
    """Parse arguments, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="seed 1,000,000 posts (default 100,000)")
    parser.add_argument("--posts", type=int, default=None, help="seed this many posts instead")
    parser.add_argument("--repeat", type=int, default=15, help="measured requests per case (median)")
    args = parser.parse_args()
    n = args.posts or (1_000_000 if args.full else 100_000)
    print(json.dumps(run(n, args.repeat), indent=2))


if __name__ == "__main__":
    main()
