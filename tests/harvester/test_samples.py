"""The demo's sample posts, served by the stand-ins, harvested by every source: all stored, copies grouped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipelines.harvest import run_source
from pipelines.models import Post
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
    city = CITY_ACCOUNTS
    harvest_env.sources = [
        {
            "key": "x-mentions",
            "platform": "twitter",
            "accounts": [{"id": city["twitter"]["id"], "handle": city["twitter"]["username"]}],
        },
        {
            "key": "x-search",
            "platform": "twitter",
            "queries": ["kupang OR oebobo OR oesapa OR maulafa OR alak"],
        },
        {"key": "fb", "platform": "facebook", "page_ids": [city["facebook"]["id"]]},
        {
            "key": "ig",
            "platform": "instagram",
            "ig_account_ids": [city["instagram"]["id"]],
            "own_usernames": [city["instagram"]["username"]],
        },
    ]
    harvest_env.write()
    for key in ("x-mentions", "x-search", "fb", "ig"):
        assert run_source(source_key=key).status == "ok"
    texts = set(session.scalars(sa.select(Post.text)))
    for sample in SAMPLE_POSTS:
        if sample.kind != "search":  # search samples are found only if a configured query matches them
            assert sample.text in texts, sample
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == len(texts)
    grouped = session.scalars(sa.select(Post).where(Post.duplicate_of_id.is_not(None))).all()
    assert grouped, "the copy-pasted sample complaint is grouped"
    for key in ("x-mentions", "x-search", "fb", "ig"):
        assert run_source(source_key=key).new_post_ids == []
