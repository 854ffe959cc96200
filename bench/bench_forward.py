"""Forwarding benchmarks: exactly-once under faults, and throughput with two real Celery workers.

    .venv/bin/python bench/bench_forward.py faults      # 10,000 complaints, 30 % failures/timeouts
    .venv/bin/python bench/bench_forward.py faults-celery --pool threads --concurrency 8   # same, via workers
    .venv/bin/python bench/bench_forward.py throughput  # complaints/s with two workers vs a baseline
    .venv/bin/python bench/bench_forward.py all

The LAPOR! stand-in runs in its own process (``python -m standins.lapor``) so it does not share a GIL
with the deliverers. PostgreSQL (``JARING_TEST_POSTGRES_URL``, a throwaway database) and Redis
(``JARING_TEST_REDIS_URL`` host, database 11) are the production pair. Figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POSTGRES_ADMIN_URL = os.environ.get("JARING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("JARING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0]
TOKEN = "bench-lapor-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def standin() -> Iterator[str]:
    """The LAPOR! stand-in in a subprocess; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "standins.lapor", str(port), TOKEN], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/_standin/stats", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh migrated database; yields its URL."""
    from jaring.migrate import upgrade

    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite'}"
        upgrade(url)
        yield url
        return
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jaring_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        from jaring import db as jaring_db

        jaring_db.reset_engine()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def configure(url: str, lapor_url: str, workdir: Path, *, timeout: float) -> dict[str, str]:
    """Point Jaring's settings at the bench database and stand-in; returns the env for workers."""
    policy = yaml.safe_load((ROOT / "config" / "forward_policy.yaml").read_text())
    policy["delivery"] = {"lease_seconds": 30, "backoff_base_seconds": 0.05, "backoff_max_seconds": 1.0,
                          "max_attempts": 1000, "sweep_interval_seconds": 2, "sweep_batch": 2000}
    policy_file = workdir / "forward_policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy, allow_unicode=True))
    env = {
        "JARING_DATABASE_URL": url,
        "JARING_LAPOR_API_BASE": lapor_url,
        "JARING_LAPOR_API_TOKEN": TOKEN,
        "JARING_FORWARD_POLICY_FILE": str(policy_file),
        "JARING_HTTP_TIMEOUT_SECONDS": str(timeout),
        "JARING_DATA_DIR": str(workdir / "data"),
        "JARING_ENVIRONMENT": "test",
    }
    os.environ.update(env)
    from jaring import db as jaring_db
    from jaring.settings import reset_settings_cache
    from pipelines import outbox

    reset_settings_cache()
    jaring_db.reset_engine()
    outbox.close_senders()
    return env


def seed_complaints(url: str, count: int) -> None:
    """``count`` complaints, each with its outbox row, inserted in bulk."""
    from pipelines.models import Complaint, OutboxItem
    from pipelines.outbox import new_idempotency_key, utcnow

    engine = sa.create_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, count, 1000):
            n = min(1000, count - start)
            ids = conn.execute(
                sa.insert(Complaint).returning(Complaint.id, sort_by_parameter_order=True),
                [{"title": f"Jalan rusak nomor {start + i}", "body": "Lubang besar di jalan, mohon diperbaiki.",
                  "category": "Infrastruktur", "instansi": "Dinas PUPR Kota Kupang", "created_at": now,
                  "confidential": True, "anonymous": False, "auto": False, "overdue": False, "attachments": []}
                 for i in range(n)],
            ).scalars().all()
            conn.execute(sa.insert(OutboxItem), [
                {"complaint_id": cid, "idempotency_key": new_idempotency_key(), "sender": "api", "state": "pending",
                 "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now, "claimed_by": "",
                 "last_error": ""} for cid in ids
            ])
    engine.dispose()


def outbox_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT state, count(*) FROM outbox GROUP BY state")).all()
    engine.dispose()
    return {state: int(n) for state, n in rows}


def verify(url: str, lapor_url: str, count: int) -> dict[str, Any]:
    """Zero duplicates and zero losses: every complaint sent once, with the tracking id LAPOR! holds."""
    stats = httpx.get(f"{lapor_url}/_standin/stats", timeout=30).json()
    reports = httpx.get(f"{lapor_url}/_standin/reports", timeout=60).json()["data"]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT o.idempotency_key, c.tracking_id FROM outbox o JOIN complaints c ON c.id = o.complaint_id"
        )).all()
        stored: dict[str, str] = {str(key): str(tid) for key, tid in rows}
    engine.dispose()
    in_lapor: dict[str, list[str]] = {}
    for report in reports:
        in_lapor.setdefault(report["external_ref"], []).append(report["trackingid"])
    mismatched = len([key for key, tid in stored.items() if in_lapor.get(key) != [tid]])
    return {
        "complaints": count,
        "reports_in_lapor": stats["reports"],
        "duplicates": stats["duplicates"],
        "lost": count - len([key for key in stored if key in in_lapor]),
        "tracking_id_mismatches": mismatched,
        "lapor_requests": stats["requests"],
    }


def bench_faults(args: argparse.Namespace) -> dict[str, object]:
    """Deliver ``count`` complaints with 30 % of LAPOR!'s answers failing or timing out (seeded)."""
    from pipelines import outbox

    with tempfile.TemporaryDirectory() as tmp, standin() as lapor_url, database(args.backend, Path(tmp)) as url:
        workdir = Path(tmp)
        configure(url, lapor_url, workdir, timeout=0.25)
        httpx.post(f"{lapor_url}/_standin/faults", json={
            "failure_rate": 0.15, "timeout_rate": 0.15, "timeout_seconds": 0.5, "honour_idempotency": False,
            "seed": 1708}, timeout=5)
        seed_complaints(url, args.count)
        from jaring.db import session_factory

        factory = session_factory()
        deferred = 0
        lock = threading.Lock()

        def one(outbox_id: int) -> None:
            nonlocal deferred
            try:
                outbox.deliver(outbox_id=outbox_id)
            except outbox.DeliveryDeferred:
                with lock:
                    deferred += 1

        started = time.perf_counter()
        rounds = 0
        with ThreadPoolExecutor(args.threads) as pool:
            while True:
                with factory() as session:
                    due = outbox.due_ids(session=session, limit=5000)
                    open_items = session.scalar(sa.text(
                        "SELECT count(*) FROM outbox WHERE state NOT IN ('sent', 'dead')"))
                if not open_items:
                    break
                rounds += 1
                list(pool.map(one, due))
                if not due:
                    time.sleep(0.05)
        elapsed = time.perf_counter() - started
        outbox.close_senders()
        result = verify(url, lapor_url, args.count)
        result.update({"backend": args.backend, "threads": args.threads, "seconds": round(elapsed, 1),
                       "retries": deferred, "states": outbox_counts(url), "rounds": rounds})
        return result


def spawn_worker(env: dict[str, str], workdir: Path, n: int, concurrency: int, pool: str) -> subprocess.Popen[bytes]:
    log = (workdir / f"worker-{n}.log").open("wb")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("JARING_")} | env | {"PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pipelines.celery_app", "worker", "-Q", "forward",
         "-c", str(concurrency), f"--pool={pool}", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"bench{n}-{uuid.uuid4().hex[:6]}@%h", "--loglevel=WARNING"],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    return proc


def wait_ready(workers: list[subprocess.Popen[bytes]], app: object) -> None:
    deadline = time.monotonic() + 60
    while True:
        replies = app.control.ping(timeout=1.0) or []  # type: ignore[attr-defined]
        if len(replies) >= len(workers):
            return
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise RuntimeError("workers did not start")


def baseline_rate(lapor_url: str, count: int) -> float:
    """Plain sequential POSTs to the stand-in, no database, no queue: the ceiling one client reaches."""
    payload = {"judul": "Jalan rusak", "isi": "Lubang besar di jalan, mohon diperbaiki.", "kategori": "Infrastruktur"}
    with httpx.Client(base_url=lapor_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        started = time.perf_counter()
        for i in range(count):
            client.post("/api/v1/reports", json={**payload, "external_ref": f"baseline-{i}"},
                        headers={"Idempotency-Key": f"baseline-{i}"}).raise_for_status()
        return count / (time.perf_counter() - started)


def bench_throughput(args: argparse.Namespace) -> dict[str, object]:
    """Complaints/s delivered by two real Celery workers (Redis broker), vs the plain-HTTP baseline."""
    import redis

    runs = []
    with tempfile.TemporaryDirectory() as tmp, standin() as lapor_url, database(args.backend, Path(tmp)) as url:
        workdir = Path(tmp)
        broker = f"{REDIS_BASE}/11"
        redis.Redis.from_url(broker).flushdb()
        env = configure(url, lapor_url, workdir, timeout=10) | {"JARING_BROKER_URL": broker}
        os.environ["JARING_BROKER_URL"] = broker
        baseline = baseline_rate(lapor_url, args.baseline_count)
        with celery_workers(env, workdir, args) as app:
            engine = sa.create_engine(url)
            for _run in range(args.runs):
                with engine.begin() as conn:
                    first = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM outbox"))
                seed_complaints(url, args.count)
                with engine.connect() as conn:
                    ids = conn.scalars(sa.text("SELECT id FROM outbox WHERE id > :f ORDER BY id"), {"f": first}).all()
                started = time.perf_counter()
                for outbox_id in ids:
                    app.send_task("jaring.forward.deliver", args=[outbox_id])
                while True:
                    with engine.connect() as conn:
                        left = conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE id > :f AND state <> 'sent'"),
                                           {"f": first})
                    if not left:
                        break
                    time.sleep(0.1)
                runs.append(args.count / (time.perf_counter() - started))
            engine.dispose()
        check = verify(url, lapor_url, args.count * args.runs)
    median = statistics.median(runs)
    return {
        "backend": args.backend, "workers": args.workers, "pool": args.pool,
        "concurrency_per_worker": args.concurrency,
        "complaints_per_run": args.count, "runs_per_second": [round(r, 1) for r in runs],
        "median_complaints_per_second": round(median, 1),
        "baseline_plain_http_per_second": round(baseline, 1),
        "ratio_vs_baseline": round(median / baseline, 2),
        "duplicates": check["duplicates"],
    }


@contextlib.contextmanager
def celery_workers(env: dict[str, str], workdir: Path, args: argparse.Namespace) -> Iterator[Any]:
    """``args.workers`` real worker processes on the forward queue; yields a client app."""
    from jaring.settings import Settings
    from pipelines.celery_app import create_app

    app = create_app(Settings())
    workers = [spawn_worker(env, workdir, n, args.concurrency, args.pool) for n in range(args.workers)]
    try:
        wait_ready(workers, app)
        yield app
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
        app.close()


def bench_faults_celery(args: argparse.Namespace) -> dict[str, object]:
    """The faults run through the production path: real workers, Redis, Celery retries and the sweep."""
    import redis

    with tempfile.TemporaryDirectory() as tmp, standin() as lapor_url, database(args.backend, Path(tmp)) as url:
        workdir = Path(tmp)
        broker = f"{REDIS_BASE}/11"
        redis.Redis.from_url(broker).flushdb()
        env = configure(url, lapor_url, workdir, timeout=0.25) | {"JARING_BROKER_URL": broker}
        os.environ["JARING_BROKER_URL"] = broker
        httpx.post(f"{lapor_url}/_standin/faults", json={
            "failure_rate": 0.15, "timeout_rate": 0.15, "timeout_seconds": 0.5, "honour_idempotency": False,
            "seed": 1708}, timeout=5)
        seed_complaints(url, args.count)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            ids = conn.scalars(sa.text("SELECT id FROM outbox ORDER BY id")).all()
        with celery_workers(env, workdir, args) as app:
            started = time.perf_counter()
            for outbox_id in ids:
                app.send_task("jaring.forward.deliver", args=[outbox_id])
            sweeps = 0
            while True:
                time.sleep(2.0)
                with engine.connect() as conn:
                    left = conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE state NOT IN ('sent', 'dead')"))
                if not left:
                    break
                app.send_task("jaring.forward.sweep")  # what beat does every sweep_interval_seconds
                sweeps += 1
            elapsed = time.perf_counter() - started
        engine.dispose()
        result = verify(url, lapor_url, args.count)
        result.update({"backend": args.backend, "via": "celery", "workers": args.workers, "pool": args.pool,
                       "concurrency_per_worker": args.concurrency, "seconds": round(elapsed, 1),
                       "sweeps": sweeps, "states": outbox_counts(url)})
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["faults", "faults-celery", "throughput", "all"], nargs="?", default="all")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--count", type=int, default=None, help="complaints (faults: 10000, throughput: 1000)")
    parser.add_argument("--threads", type=int, default=16, help="concurrent deliverers in the faults run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="processes (or threads) per worker")
    parser.add_argument("--pool", choices=["prefork", "threads"], default="prefork", help="Celery worker pool")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-count", type=int, default=500)
    args = parser.parse_args()
    results = {}
    if args.what in ("faults", "all"):
        args_f = argparse.Namespace(**{**vars(args), "count": args.count or 10_000})
        results["faults"] = bench_faults(args_f)
        print(json.dumps({"faults": results["faults"]}), flush=True)
    if args.what == "faults-celery":
        args_c = argparse.Namespace(**{**vars(args), "count": args.count or 10_000})
        print(json.dumps({"faults_celery": bench_faults_celery(args_c)}), flush=True)
    if args.what in ("throughput", "all"):
        args_t = argparse.Namespace(**{**vars(args), "count": args.count or 1000})
        results["throughput"] = bench_throughput(args_t)
        print(json.dumps({"throughput": results["throughput"]}), flush=True)


if __name__ == "__main__":
    main()
