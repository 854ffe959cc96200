"""Fixtures for harvester tests: the X and Graph stand-ins over real HTTP, and a sources file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jaring.settings import reset_settings_cache
from standins import graph, twitter
from standins.server import RunningServer, serve_app

X_TOKEN = "x-test-token"
GRAPH_TOKEN = "graph-test-token"
PAGE_ID = "100200300400500"
IG_ID = "17841400000000001"


class Sleeper:
    """An injectable sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def x_state() -> twitter.TwitterState:
    state = twitter.TwitterState(bearer_tokens={X_TOKEN})
    state.add_user("PemkotKupang", "Pemerintah Kota Kupang", user_id="1700000000000000001")
    return state


@pytest.fixture
def x_server(x_state: twitter.TwitterState) -> Iterator[RunningServer]:
    with serve_app(twitter.create_app(x_state)) as server:
        yield server


@pytest.fixture
def graph_state() -> graph.GraphState:
    state = graph.GraphState(access_tokens={GRAPH_TOKEN})
    state.add_page(PAGE_ID, "Pemerintah Kota Kupang")
    state.add_ig_account(IG_ID, "pemkot.kupang")
    return state


@pytest.fixture
def graph_server(graph_state: graph.GraphState) -> Iterator[RunningServer]:
    with serve_app(graph.create_app(graph_state)) as server:
        yield server


def default_sources() -> list[dict[str, Any]]:
    return [
        {
            "key": "x-mentions",
            "platform": "twitter",
            "accounts": [{"id": "1700000000000000001", "handle": "PemkotKupang"}],
        },
        {"key": "x-search", "platform": "twitter", "queries": ["oebobo OR kupang"]},
        {"key": "fb", "platform": "facebook", "page_ids": [PAGE_ID]},
        {"key": "ig", "platform": "instagram", "ig_account_ids": [IG_ID], "own_usernames": ["pemkot.kupang"]},
    ]


class HarvestEnv:
    """Writes the sources file the harvest reads, and points settings at the stand-ins."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.monkeypatch = monkeypatch
        self.sources = default_sources()
        self.defaults: dict[str, Any] = {"schedule_seconds": 60, "max_wait_seconds": 60, "page_size": 10}
        self.write()

    def write(self) -> None:
        self.path.write_text(yaml.safe_dump({"defaults": self.defaults, "sources": self.sources}))

    def set(self, key: str, **changes: Any) -> None:
        for source in self.sources:
            if source["key"] == key:
                source.update(changes)
        self.write()

    def setenv(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)
        reset_settings_cache()


@pytest.fixture
def harvest_env(
    configured_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    x_server: RunningServer,
    graph_server: RunningServer,
) -> HarvestEnv:
    env = HarvestEnv(tmp_path / "sources.yaml", monkeypatch)
    monkeypatch.setenv("JARING_SOURCES_FILE", str(env.path))
    monkeypatch.setenv("JARING_TWITTER_API_BASE", x_server.base_url)
    monkeypatch.setenv("JARING_GRAPH_API_BASE", graph_server.base_url)
    monkeypatch.setenv("JARING_TWITTER_BEARER_TOKEN", X_TOKEN)
    monkeypatch.setenv("JARING_FACEBOOK_PAGE_TOKEN", GRAPH_TOKEN)
    monkeypatch.setenv("JARING_INSTAGRAM_TOKEN", GRAPH_TOKEN)
    monkeypatch.setenv("JARING_META_APP_SECRET", "app-secret-for-tests")
    monkeypatch.setenv("JARING_META_VERIFY_TOKEN", "verify-me")
    reset_settings_cache()
    return env
