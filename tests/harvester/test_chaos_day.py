"""A simulated day of harvesting with every platform failing half of its requests at random (fixed seed).

Every post, comment and media created during the day must end up stored exactly once. The
platforms answer 429/5xx/Graph error codes/HTML error pages at random; the harvester waits
(through an injected sleep that advances the simulated clock), retries, backs off, ends runs
early and resumes from its checkpoints on the next scheduled run.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipelines.harvest import run_source
from pipelines.models import HarvestRun, Post
from standins.graph import GraphState
from standins.twitter import TwitterState
from tests.harvester.conftest import IG_ID, PAGE_ID, HarvestEnv

TICK = timedelta(minutes=15)
TICKS = 96  # one day


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.slow
def test_a_day_of_half_failing_platforms_loses_nothing_and_stores_nothing_twice(
    harvest_env: HarvestEnv, x_state: TwitterState, graph_state: GraphState, session: Session
) -> None:
    rng = random.Random(20261127)
    clock = SimClock(datetime.now(UTC) - timedelta(days=1, minutes=30))
    x_state.clock = clock
    graph_state.clock = clock
    x_state.rate_limit_window_seconds = 45
    x_state.faults.rate, x_state.faults.choices = 0.5, ["429", "500", "503", "html"]
    x_state.faults.reseed(1)
    graph_state.faults.rate, graph_state.faults.choices = 0.5, ["1", "2", "4", "17", "32", "613", "html"]
    graph_state.faults.reseed(2)
    harvest_env.defaults.update({"page_size": 25, "max_wait_seconds": 90})
    harvest_env.write()

    expected: dict[str, set[str]] = {"twitter": set(), "facebook": set(), "instagram": set()}
    own_posts: list[str] = []
    own_media: list[str] = []
    keys = ["x-mentions", "x-search", "fb", "ig"]
    summaries = []

    def create_content(tick: int) -> None:
        def at() -> datetime:
            return datetime.fromtimestamp(clock.now - rng.uniform(0, 14 * 60), UTC)

        if tick % 16 == 0:
            own_posts.append(
                graph_state.add_post(
                    PAGE_ID, f"Pengumuman Pemkot {tick}", author=(PAGE_ID, "Pemkot"), created_at=at()
                )
            )
            own_media.append(
                graph_state.add_ig_media(IG_ID, f"Kegiatan wali kota {tick}", tagged=False, created_at=at())
            )
        for n in range(rng.randint(0, 3)):
            expected["twitter"].add(
                x_state.add_tweet(
                    f"@PemkotKupang keluhan {tick}-{n} jalan rusak di Oebobo",
                    author=f"w{tick}{n}",
                    created_at=at(),
                )
            )
        for n in range(rng.randint(0, 2)):
            expected["twitter"].add(
                x_state.add_tweet(
                    f"Air mati lagi di kupang {tick}-{n}", author=f"s{tick}{n}", created_at=at()
                )
            )
        for n in range(rng.randint(0, 2)):
            expected["facebook"].add(
                graph_state.add_post(PAGE_ID, f"Lampu jalan mati {tick}-{n}", created_at=at())
            )
        if rng.random() < 0.3:
            expected["facebook"].add(
                graph_state.add_post(
                    PAGE_ID, f"Tag pemkot {tick}", tagged=True, author=("888", "Om Ande"), created_at=at()
                )
            )
        for n in range(rng.randint(0, 3)):
            expected["facebook"].add(
                graph_state.add_comment(rng.choice(own_posts), f"Komentar {tick}-{n} sampah", created_at=at())
            )
        for n in range(rng.randint(0, 2)):
            expected["instagram"].add(
                graph_state.add_ig_media(IG_ID, f"Banjir @pemkot.kupang {tick}-{n}", created_at=at())
            )
        for n in range(rng.randint(0, 2)):
            expected["instagram"].add(
                graph_state.add_ig_comment(rng.choice(own_media), f"Komen {tick}-{n} air", created_at=at())
            )

    def harvest_all() -> None:
        for key in keys:
            summaries.append(run_source(source_key=key, sleep=clock.sleep, clock=clock))

    for tick in range(TICKS):
        clock.now += TICK.total_seconds()
        create_content(tick)
        harvest_all()

    def stored() -> dict[str, list[str]]:
        session.expire_all()
        rows = session.execute(sa.select(Post.platform, Post.external_id)).all()
        out: dict[str, list[str]] = {"twitter": [], "facebook": [], "instagram": []}
        for platform, external_id in rows:
            out[platform].append(external_id)
        return out

    # The platforms keep failing half the time; the next scheduled runs catch up.
    for _ in range(24):
        if all(set(stored()[p]) >= expected[p] for p in expected):
            break
        clock.now += TICK.total_seconds()
        harvest_all()

    final = stored()
    total = sum(len(v) for v in expected.values())
    assert total > 500
    for platform in expected:
        assert set(final[platform]) == expected[platform], platform  # nothing lost, nothing invented
        assert len(final[platform]) == len(expected[platform])  # nothing twice
    # The chaos was real: many injected faults, many runs cut short.
    assert len(x_state.faults.injected) > 100 and len(graph_state.faults.injected) > 100
    statuses = [s.status for s in summaries]
    assert (
        statuses.count("ok") > 50
        and (statuses.count("partial") + statuses.count("failed") + statuses.count("backoff")) > 50
    )
    assert session.scalar(sa.select(sa.func.sum(HarvestRun.rate_limit_wait_seconds))) > 0
