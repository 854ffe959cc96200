"""The demo: the whole path, harvest → classify → review queue → LAPOR!, against local stand-ins.

Stand-in servers for the X API, the Graph API and LAPOR! run in this process, loaded with the
invented sample posts of ``standins.samples``. Their timestamps hang off an anchor time saved in the
data directory, so every run serves the same posts with the same ids: a second ``--once`` run finds
nothing new (checkpoints) and forwards nothing twice (the outbox).

``run_once`` calls the services in-process; ``run_forever`` starts the real ``jaring worker``,
``jaring beat`` and ``jaring serve`` processes and reports progress until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from rich.console import Console

from jaring import db as jaring_db
from jaring.settings import get_settings, reset_settings_cache
from standins.graph import GraphState
from standins.graph import create_app as graph_app
from standins.lapor import LaporState
from standins.lapor import create_app as lapor_app
from standins.samples import CITY_ACCOUNTS, SAMPLE_POSTS
from standins.server import RunningServer, serve_app
from standins.twitter import TwitterState
from standins.twitter import create_app as twitter_app

console = Console(stderr=True)

# Demo-only credentials for the stand-ins; a real deployment sets its own in the environment.
DEMO_ENV = {
    "JARING_TWITTER_BEARER_TOKEN": "demo-x-bearer-token",
    "JARING_FACEBOOK_PAGE_TOKEN": "demo-page-token",
    "JARING_INSTAGRAM_TOKEN": "demo-ig-token",
    "JARING_META_APP_SECRET": "demo-meta-app-secret",
    "JARING_META_VERIFY_TOKEN": "demo-verify-token",
    "JARING_LAPOR_SENDER": "api",
    "JARING_LAPOR_API_TOKEN": "standin-lapor-token",
}
DEMO_USERS = (("humas", "reviewer"), ("analis", "analyst"), ("admin", "admin"), ("pimpinan", "viewer"))
DEMO_PASSWORD = "jaring-demo-2026"  # noqa: S105 - demo accounts on a local SQLite file only


@dataclass
class StandIns:
    """The three running stand-in servers and their in-memory state."""

    twitter: RunningServer
    graph: RunningServer
    lapor: RunningServer
    lapor_state: LaporState
    servers: list[RunningServer] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every server."""
        for server in (self.twitter, self.graph, self.lapor):
            server.stop()


def anchor_time(data_dir: Path) -> datetime:
    """The fixed 'now' the sample posts hang off (created on the first run, then reused)."""
    path = data_dir / "demo" / "anchor.txt"
    if path.exists():
        return datetime.fromisoformat(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    anchor = datetime.now(UTC).replace(microsecond=0)
    path.write_text(anchor.isoformat())
    return anchor


def load_twitter(anchor: datetime) -> TwitterState:
    """X stand-in: the city's account and every sample tweet (mentions and search hits)."""
    state = TwitterState()
    city = CITY_ACCOUNTS["twitter"]
    state.add_user(city["username"], "Pemerintah Kota Kupang", user_id=city["id"])
    for sample in sorted((s for s in SAMPLE_POSTS if s.platform == "twitter"), key=lambda s: -s.minutes_ago):
        state.add_tweet(
            sample.text, author=sample.author, created_at=anchor - timedelta(minutes=sample.minutes_ago)
        )
    return state


def load_graph(anchor: datetime) -> GraphState:
    """Graph stand-in: the city's page (feed, tagged, comments under its post) and IG account."""
    state = GraphState()
    page, ig = CITY_ACCOUNTS["facebook"], CITY_ACCOUNTS["instagram"]
    state.add_page(page["id"], page["name"])
    state.add_ig_account(ig["id"], ig["username"])
    day_before = anchor - timedelta(days=1)
    announcement = state.add_post(
        page["id"],
        "Pengumuman: Pemkot Kupang membuka layanan pengaduan warga. Sampaikan keluhan Anda di sini.",
        author=(page["id"], page["name"]),
        created_at=day_before,
    )
    own_media = state.add_ig_media(
        ig["id"], "Kegiatan bersih-bersih kota bersama warga #KotaKupang", tagged=False, created_at=day_before
    )
    ordered = sorted((s for s in SAMPLE_POSTS if s.platform != "twitter"), key=lambda s: -s.minutes_ago)
    for n, sample in enumerate(ordered):
        created = anchor - timedelta(minutes=sample.minutes_ago)
        author = (str(5000 + n), sample.author)
        if sample.kind == "feed":
            state.add_post(page["id"], sample.text, author=author, created_at=created)
        elif sample.kind == "tagged":
            state.add_post(page["id"], sample.text, author=author, created_at=created, tagged=True)
        elif sample.kind == "comment":
            state.add_comment(announcement, sample.text, author=author, created_at=created)
        elif sample.kind == "ig_comment":
            state.add_ig_comment(own_media, sample.text, username=sample.author, created_at=created)
        elif sample.kind == "ig_tagged":
            state.add_ig_media(ig["id"], sample.text, username=sample.author, created_at=created)
    return state


def start_standins(
    anchor: datetime, *, ports: tuple[int | None, int | None, int | None] = (None, None, None)
) -> StandIns:
    """Start the X, Graph and LAPOR! stand-ins loaded with the sample data."""
    lapor_state = LaporState(token=DEMO_ENV["JARING_LAPOR_API_TOKEN"])
    return StandIns(
        twitter=serve_app(twitter_app(load_twitter(anchor)), port=ports[0]),
        graph=serve_app(graph_app(load_graph(anchor)), port=ports[1]),
        lapor=serve_app(lapor_app(lapor_state), port=ports[2]),
        lapor_state=lapor_state,
    )


def write_sources(path: Path, *, schedule_seconds: int = 30) -> Path:
    """The demo's sources file: the sample city accounts, harvested every ``schedule_seconds``."""
    tw, fb, ig = CITY_ACCOUNTS["twitter"], CITY_ACCOUNTS["facebook"], CITY_ACCOUNTS["instagram"]
    config = {
        "defaults": {"enabled": True, "schedule_seconds": schedule_seconds, "max_wait_seconds": 5},
        "sources": [
            {
                "key": "x-mentions",
                "platform": "twitter",
                "credentials_env": "JARING_TWITTER_BEARER_TOKEN",
                "description": "Mentions of the city's X account (demo)",
                "accounts": [{"id": tw["id"], "handle": tw["username"]}],
            },
            {
                "key": "x-search",
                "platform": "twitter",
                "credentials_env": "JARING_TWITTER_BEARER_TOKEN",
                "description": "Recent search for the city's name (demo)",
                "queries": ["Kupang -is:retweet", "(Kelapa Lima OR Oebobo OR Alak) banjir"],
            },
            {
                "key": "fb-pemkot",
                "platform": "facebook",
                "credentials_env": "JARING_FACEBOOK_PAGE_TOKEN",
                "description": "The city's Facebook page (demo)",
                "page_ids": [fb["id"]],
            },
            {
                "key": "ig-pemkot",
                "platform": "instagram",
                "credentials_env": "JARING_INSTAGRAM_TOKEN",
                "description": "The city's Instagram account (demo)",
                "ig_account_ids": [ig["id"]],
                "own_usernames": [ig["username"]],
            },
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Generated by `jaring demo`: the stand-ins' sample accounts.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return path


def configure_environment(standins: StandIns, data_dir: Path) -> dict[str, str]:
    """Point every API base URL at the stand-ins (in this process and its children)."""
    env = {
        **DEMO_ENV,
        "JARING_DATA_DIR": str(data_dir),
        "JARING_TWITTER_API_BASE": standins.twitter.base_url,
        "JARING_GRAPH_API_BASE": standins.graph.base_url,
        "JARING_LAPOR_API_BASE": standins.lapor.base_url,
        "JARING_LAPOR_PUBLIC_URL": f"{standins.lapor.base_url}/pengaduan",
        "JARING_SOURCES_FILE": str(write_sources(data_dir / "demo" / "sources.yaml")),
    }
    os.environ.update(env)
    reset_settings_cache()
    jaring_db.reset_engine()
    return env


def ensure_demo_users() -> list[str]:
    """Create the demo accounts once (password printed by the demo)."""
    from jaring.db import session_scope
    from pipelines.models import User
    from review.auth import create_user

    created = []
    with session_scope() as session:
        for username, role in DEMO_USERS:
            if session.scalar(sa.select(User.id).where(User.username == username)) is None:
                create_user(
                    session=session, username=username, password=DEMO_PASSWORD, role=role, actor="system:demo"
                )
                created.append(username)
    return created


def _prepare() -> tuple[Path, StandIns]:
    from jaring.migrate import upgrade

    data_dir = get_settings().data_dir.resolve()
    standins = start_standins(anchor_time(data_dir))
    configure_environment(standins, data_dir)
    upgrade(get_settings().database_url)
    ensure_demo_users()
    return data_dir, standins


def counts() -> dict[str, int]:
    """Totals in the database: posts, classified, waiting in the review queue, complaints sent."""
    from jaring.db import session_scope
    from pipelines.models import Classification, OutboxItem, OutboxState, Post, PostStatus

    with session_scope() as session:

        def count(query: Any) -> int:
            return int(session.scalar(query) or 0)

        return {
            "posts": count(sa.select(sa.func.count()).select_from(Post)),
            "classified": count(sa.select(sa.func.count(sa.distinct(Classification.post_id)))),
            "in_review_queue": count(
                sa.select(sa.func.count()).select_from(Post).where(Post.status == PostStatus.QUEUED.value)
            ),
            "complaints_sent": count(
                sa.select(sa.func.count())
                .select_from(OutboxItem)
                .where(OutboxItem.state == OutboxState.SENT.value)
            ),
        }


def latest_tracking_id() -> str | None:
    """The tracking id of the complaint LAPOR! accepted most recently."""
    from jaring.db import session_scope
    from pipelines.models import Complaint

    with session_scope() as session:
        return session.scalar(
            sa.select(Complaint.tracking_id)
            .where(Complaint.tracking_id.is_not(None))
            .order_by(Complaint.forwarded_at.desc())
            .limit(1)
        )


def run_once() -> dict[str, Any]:
    """One full cycle in-process: harvest every source, classify, auto-forward, deliver. Returns a summary."""
    from jaring.db import session_scope
    from pipelines import outbox
    from pipelines.classify import classify_posts, pending_post_ids
    from pipelines.harvest import run_source
    from pipelines.models import Complaint
    from pipelines.sources import load_sources

    _, standins = _prepare()
    try:
        settings = get_settings()
        harvested, updated, sources = 0, 0, {}
        post_ids: list[int] = []
        for source in load_sources(settings.sources_file):
            result = run_source(source_key=source.key)
            sources[source.key] = result.status
            harvested += len(result.new_post_ids)
            updated += len(result.updated_post_ids)
            post_ids += result.new_post_ids + result.updated_post_ids
        with session_scope() as session:
            post_ids = sorted(
                set(post_ids) | set(pending_post_ids(session=session, requeue_after=timedelta(0)))
            )
            outcome = classify_posts(session=session, post_ids=post_ids)
            due = outbox.due_ids(session=session)
        delivered = []
        for outbox_id in sorted(set(outcome.outbox_ids) | set(due)):
            delivery = outbox.deliver(outbox_id=outbox_id)
            if delivery.outcome == "sent":
                delivered.append(outbox_id)
        with session_scope() as session:
            tracking = (
                list(
                    session.scalars(
                        sa.select(Complaint.tracking_id)
                        .join(outbox.OutboxItem, outbox.OutboxItem.complaint_id == Complaint.id)
                        .where(outbox.OutboxItem.id.in_(delivered))
                    )
                )
                if delivered
                else []
            )
        totals = counts()
        return {
            "harvested": harvested,
            "updated": updated,
            "classified": len(outcome.classified),
            "queued_for_review": totals["in_review_queue"],
            "forwarded": len(delivered),
            "lapor_tracking_ids": sorted(t for t in tracking if t),
            "sources": sources,
            "model_version": outcome.model_version,
            "totals": totals,
            "lapor_reports_in_standin": len(standins.lapor_state.reports),
        }
    finally:
        standins.stop()


def run_forever(port: int | None = None) -> None:
    """Start stand-ins, the real worker, beat and web app; print progress until Ctrl-C."""
    data_dir, standins = _prepare()
    settings = get_settings()
    web_port = port or settings.web_port
    logs = data_dir / "demo" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    jaring = [sys.executable, "-m", "jaring.cli"]
    commands = {
        "worker": [
            *jaring,
            "worker",
            "--queues",
            "harvest,classify,forward",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
        ],
        "beat": [*jaring, "beat", "--loglevel", "WARNING"],
        "web": [*jaring, "serve", "--port", str(web_port)],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            with (logs / f"{name}.log").open("ab") as log:
                procs[name] = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        # Beat's first dispatcher tick comes one interval after it starts: queue the due sources now.
        from pipelines.tasks.harvest import dispatch_due_sources

        dispatch_due_sources()
        console.print(
            f"[bold]Jaring demo[/bold] — review queue: [link]http://127.0.0.1:{web_port}[/link] "
            f"(login [cyan]humas[/cyan] / [cyan]{DEMO_PASSWORD}[/cyan]; also analis, admin, pimpinan)"
        )
        console.print(
            f"Stand-ins: X {standins.twitter.base_url}, Graph {standins.graph.base_url}, "
            f"LAPOR! {standins.lapor.base_url}/_standin/reports — logs in {logs}"
        )
        console.print("Sample data: invented Kupang posts (standins/samples.py). Ctrl-C stops everything.")
        last: dict[str, int] = {}
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {logs / (name + '.log')}")
            now = counts()
            if now != last:
                console.print(
                    f"captured {now['posts']}, classified {now['classified']}, in review queue "
                    f"{now['in_review_queue']}, forwarded to LAPOR! {now['complaints_sent']} "
                    f"(stand-in holds {len(standins.lapor_state.reports)})"
                )
                if now["complaints_sent"] and not last.get("complaints_sent"):
                    tracking = latest_tracking_id()
                    console.print(
                        f"[green]forwarded to LAPOR![/green] tracking id {tracking}: "
                        f"{settings.lapor_public_url}/{tracking} — more in the web app under 'LAPOR!'"
                    )
                last = now
            time.sleep(2)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        standins.stop()
