"""The demo's sample posts, served by the stand-ins, harvested by every source: all stored, copies grouped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring.settings import REPO_ROOT
from pipelines.harvest import run_source
from pipelines.models import Post
from pipelines.sources import load_sources
from standins import graph, twitter
from standins.samples import CITY_ACCOUNTS, SAMPLE_POSTS
from standins.server import RunningServer, serve_app
from tests.harvester.conftest import HarvestEnv


@pytest.fixture
def sample_servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    x = twitter.TwitterState()
    x.load_samples(list(SAMPLE_POSTS), city_account=CITY_ACCOUNTS["twitter"])
    g = graph.GraphState()
    g.load_samples(list(SAMPLE_POSTS), page=CITY_ACCOUNTS["facebook"], ig_account=CITY_ACCOUNTS["instagram"])
    with serve_app(twitter.create_app(x)) as xs, serve_app(graph.create_app(g)) as gs:
        yield xs, gs


def test_every_sample_post_is_harvested_once_and_copies_are_grouped(
    harvest_env: HarvestEnv, sample_servers: tuple[RunningServer, RunningServer], session: Session
) -> None:
    xs, gs = sample_servers
    harvest_env.setenv("JARING_TWITTER_API_BASE", xs.base_url)
    harvest_env.setenv("JARING_GRAPH_API_BASE", gs.base_url)
    # The shipped sources file, as the demo uses it (copied: the test may not edit the real one).
    harvest_env.path.write_text((REPO_ROOT / "config" / "sources.yaml").read_text())
    keys = [source.key for source in load_sources(harvest_env.path)]
    assert keys == ["x-mentions", "x-search", "fb-pemkot", "ig-pemkot"]
    for key in keys:
        assert run_source(source_key=key).status == "ok"
    texts = set(session.scalars(sa.select(Post.text)))
    for sample in SAMPLE_POSTS:
        if "sunset" not in sample.text:  # the one search sample no complaint query should match
            assert sample.text in texts, sample
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == len(texts)
    grouped = session.scalars(sa.select(Post).where(Post.duplicate_of_id.is_not(None))).all()
    assert grouped, "the copy-pasted sample complaint is grouped"
    for key in keys:
        assert run_source(source_key=key).new_post_ids == []
