"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, a clean settings environment.

Services: PostgreSQL at ``JARING_TEST_POSTGRES_URL`` (default 127.0.0.1:5432, database ``test``) and
Redis at ``JARING_TEST_REDIS_URL``. Locally a missing service skips the tests that need it; in CI
(``CI=true``) it fails them, so nothing silently stops being tested.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from jaring import db as jaring_db
from jaring.migrate import upgrade
from jaring.settings import reset_settings_cache
from pipelines.models import Base

POSTGRES_ADMIN_URL = os.environ.get(
    "JARING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("JARING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(name: str, why: object) -> None:
    """Fail in CI, skip locally: a test that needs a service never silently passes without it."""
    message = f"{name} is not reachable: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own data dir and no JARING_* leaking in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("JARING_") and not key.startswith("JARING_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("JARING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JARING_ENVIRONMENT", "test")
    reset_settings_cache()
    jaring_db.reset_engine()
    yield
    jaring_db.reset_engine()
    reset_settings_cache()


# --- SQLite -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A freshly migrated SQLite database file (copied from a migrated template)."""
    path = tmp_path / "jaring.sqlite"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    """A throwaway, migrated PostgreSQL database for this test session."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jaring_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        yield f"unavailable:{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        return
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    jaring_db.reset_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def truncate_all(url: str) -> None:
    """Empty every table (TRUNCATE does not fire the audit log's row triggers)."""
    engine = sa.create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def postgres_url(_postgres_database: str) -> Iterator[str]:
    """A migrated PostgreSQL database, emptied after the test."""
    if _postgres_database.startswith("unavailable:"):
        service_missing("PostgreSQL", _postgres_database)
    yield _postgres_database
    jaring_db.reset_engine()
    truncate_all(_postgres_database)


# --- Either backend -----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database URL; tests using it run once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def configured_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Jaring's settings (JARING_DATABASE_URL) at the test database."""
    monkeypatch.setenv("JARING_DATABASE_URL", db_url)
    reset_settings_cache()
    jaring_db.reset_engine()
    return db_url


@pytest.fixture
def session(configured_db: str) -> Iterator[Session]:
    """A session on the configured test database (SQLite and PostgreSQL)."""
    factory: sessionmaker[Session] = jaring_db.session_factory()
    with factory() as s:
        yield s


# --- Redis --------------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    """URL of the real Redis server used by broker tests."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


# --- Real Celery processes ----------------------------------------------------------------------


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class CeleryProcesses:
    """Starts real ``celery worker`` / ``celery beat`` subprocesses and stops them after the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[tuple[object, Path]] = []

    def _env(self, database_url: str, broker_url: str, extra_env: dict[str, str] | None) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("JARING_") or k.startswith("JARING_TEST_")
        }
        env.update(
            JARING_DATABASE_URL=database_url,
            JARING_BROKER_URL=broker_url,
            JARING_DATA_DIR=str(self.tmp_path / "data"),
            JARING_ENVIRONMENT="test",
            PYTHONWARNINGS="ignore",
        )
        env.update(extra_env or {})
        return env

    def _spawn(self, args: list[str], env: dict[str, str], name: str):  # type: ignore[no-untyped-def]
        import subprocess
        import sys

        log_path = self.tmp_path / f"{name}-{len(self.procs)}.log"
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "pipelines.celery_app", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((proc, log_path))
        return proc, log_path

    def worker(
        self,
        *,
        database_url: str,
        broker_url: str,
        queues: str = "harvest,classify,forward",
        concurrency: int = 1,
        extra_env: dict[str, str] | None = None,
        wait_ready: bool = True,
    ):  # type: ignore[no-untyped-def]
        """Start a worker; by default wait until it logs that it is ready."""
        proc, log_path = self._spawn(
            [
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
                "--loglevel=INFO",
            ],
            self._env(database_url, broker_url, extra_env),
            "worker",
        )
        if wait_ready:
            wait_for(
                lambda: b"ready." in log_path.read_bytes() or proc.poll() is not None, 60, what="worker ready"
            )
            assert proc.poll() is None, log_path.read_text(errors="replace")
        return proc

    def beat(self, *, database_url: str, broker_url: str, extra_env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        """Start celery beat with its schedule file in the test's data dir."""
        (self.tmp_path / "data").mkdir(exist_ok=True)
        proc, _ = self._spawn(
            ["beat", "--loglevel=INFO", f"--schedule={self.tmp_path / 'data' / 'beat-schedule'}"],
            self._env(database_url, broker_url, extra_env),
            "beat",
        )
        return proc

    def logs(self) -> str:
        """Everything the processes printed (for assertion messages)."""
        return "\n".join(p.read_text(errors="replace") for _, p in self.procs)

    def stop(self) -> None:
        """Terminate every process group, killing what does not exit."""
        import signal
        import subprocess

        for proc, _ in self.procs:
            if proc.poll() is None:  # type: ignore[attr-defined]
                os.killpg(proc.pid, signal.SIGTERM)  # type: ignore[attr-defined]
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=15)  # type: ignore[attr-defined]
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
                proc.wait(timeout=5)  # type: ignore[attr-defined]


@pytest.fixture
def celery_processes(tmp_path: Path) -> Iterator[CeleryProcesses]:
    """Real Celery worker/beat subprocesses: ``celery_processes.worker(database_url=..., broker_url=...)``."""
    processes = CeleryProcesses(tmp_path)
    yield processes
    processes.stop()


# Name promised in /work/team/CONTRACTS.md.
celery_worker_process = celery_processes
