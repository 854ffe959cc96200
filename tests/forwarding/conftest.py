"""Fixtures for forwarding: the LAPOR! stand-in over real HTTP, a fast delivery policy, complaints."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from jaring import db as jaring_db
from jaring.settings import get_settings, reset_settings_cache
from pipelines import outbox
from pipelines.models import Complaint, OutboxItem, Post
from standins.lapor import LaporState, create_app
from standins.server import RunningServer, serve_app

TOKEN = "test-lapor-token"
FAST_DELIVERY = {
    "lease_seconds": 2,
    "backoff_base_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "max_attempts": 1000,
    "sweep_interval_seconds": 1,
    "sweep_batch": 1000,
}
_ids = itertools.count(1)


def write_policy(path: Path, *, delivery: dict | None = None, auto_forward: dict | None = None,
                 reply: dict | None = None) -> Path:
    """A forwarding config file based on the shipped one, with overrides."""
    shipped = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "forward_policy.yaml").read_text())
    shipped["delivery"] = {**shipped["delivery"], **(delivery or FAST_DELIVERY)}
    if auto_forward is not None:
        shipped["auto_forward"] = auto_forward
    if reply is not None:
        shipped["reply"] = reply
    path.write_text(yaml.safe_dump(shipped, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def lapor_state() -> LaporState:
    """The stand-in's in-memory state (seeded, well-behaved until a test turns a knob)."""
    return LaporState(token=TOKEN, seed=1708, timeout_seconds=1.0)


@pytest.fixture
def lapor_server(lapor_state: LaporState) -> Iterator[RunningServer]:
    """The LAPOR! stand-in served on a free loopback port."""
    server = serve_app(create_app(lapor_state))
    yield server
    lapor_state.hang_seconds = 0
    server.stop()


@dataclass
class ForwardEnv:
    database_url: str
    lapor_url: str
    policy_file: Path
    state: LaporState

    def env(self) -> dict[str, str]:
        """JARING_* variables for a worker subprocess talking to the same database and stand-in."""
        return {
            "JARING_DATABASE_URL": self.database_url,
            "JARING_LAPOR_API_BASE": self.lapor_url,
            "JARING_LAPOR_API_TOKEN": TOKEN,
            "JARING_LAPOR_PUBLIC_URL": f"{self.lapor_url}/pengaduan",
            "JARING_FORWARD_POLICY_FILE": str(self.policy_file),
            "JARING_HTTP_TIMEOUT_SECONDS": "0.5",
        }


@pytest.fixture
def forward_env(
    configured_db: str, lapor_server: RunningServer, lapor_state: LaporState, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ForwardEnv]:
    """Settings pointing at the test database, the stand-in and a fast delivery policy."""
    env = ForwardEnv(configured_db, lapor_server.base_url, write_policy(tmp_path / "forward_policy.yaml"),
                     lapor_state)
    for key, value in env.env().items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    jaring_db.reset_engine()
    outbox.close_senders()
    yield env
    outbox.close_senders()


def add_complaint(session: Session, *, title: str = "Jalan berlubang di Oebobo", body: str | None = None,
                  platform: str = "twitter", **fields: object) -> Complaint:
    """A post and its complaint (flushed, not committed)."""
    n = next(_ids)
    post = Post(platform=platform, external_id=f"t{n}-{id(session)}", text=body or title, raw={},
                status="confirmed")
    session.add(post)
    session.flush()
    complaint = Complaint(post_id=post.id, title=title, body=body or f"{title}. Mohon segera diperbaiki.",
                          category="Infrastruktur", instansi="Dinas PUPR Kota Kupang", kecamatan="Oebobo",
                          **fields)
    session.add(complaint)
    session.flush()
    return complaint


def queue_complaints(session: Session, count: int, **fields: object) -> list[int]:
    """``count`` complaints put in the outbox and committed; returns the outbox ids."""
    ids = []
    for i in range(count):
        complaint = add_complaint(session, title=f"Keluhan nomor {i}", **fields)
        ids.append(outbox.enqueue(session=session, complaint=complaint, actor="tester").id)
    session.commit()
    return ids


def states(session: Session) -> dict[str, int]:
    """Outbox counts by state, read fresh."""
    session.expire_all()
    return outbox.counts_by_state(session=session)


def item(session: Session, outbox_id: int) -> OutboxItem:
    """One outbox row, read fresh."""
    session.expire_all()
    row = session.scalar(sa.select(OutboxItem).where(OutboxItem.id == outbox_id))
    assert row is not None
    return row


@pytest.fixture
def settings_now():  # type: ignore[no-untyped-def]
    """Current settings (after the environment fixtures)."""
    return get_settings()
