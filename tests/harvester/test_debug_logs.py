"""Credentials never reach the log, even at DEBUG where tweepy and urllib3 print requests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from standins.graph import GraphState
from standins.server import RunningServer
from standins.twitter import TwitterState
from tests.harvester.conftest import PAGE_ID

X_BEARER = (
    "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4X"
)
GRAPH_TOKEN = "EAAGm0PX4ZCpsBAJk3ZBsWQpL9kZCZA2Yv7ZAs0ZD"
PROOF = "4f1d0c2b9e8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0"

# Logging set up as the CLI, web app and workers do (jaring.logs), at DEBUG, then a real tweepy
# client and a real facebook-sdk client talking to the stand-ins.
SCRIPT = textwrap.dedent(
    """
    import logging, os, sys
    from jaring.logs import configure_logging
    from harvester.graph import GraphClient
    from harvester.twitter import TwitterAccount, TwitterCollector

    configure_logging("DEBUG")
    collector = TwitterCollector(
        bearer_token=os.environ["T_X_BEARER"],
        base_url=os.environ["T_X_BASE"],
        accounts=[TwitterAccount("1700000000000000001", "PemkotKupang")],
        page_size=10,
    )
    events = list(collector.collect({}))
    print("x events", len(events), file=sys.stderr)
    client = GraphClient(token=os.environ["T_GRAPH_TOKEN"], base_url=os.environ["T_GRAPH_BASE"])
    print("graph page", client.get(os.environ["T_PAGE_ID"], {"fields": "id,name"})["name"], file=sys.stderr)
    log = logging.getLogger("jaring.test")
    url = "/v21.0/me?access_token=" + os.environ["T_GRAPH_TOKEN"] + "&appsecret_proof=" + os.environ["T_PROOF"]
    log.warning("retrying %s", url)
    try:
        raise ConnectionError("Max retries exceeded with url: " + url)
    except ConnectionError:
        log.exception("request failed")
    log.error({"Authorization": "Bearer " + os.environ["T_X_BEARER"]})
    """
)


def test_debug_logs_of_tweepy_and_graph_requests_do_not_contain_credentials(
    x_state: TwitterState,
    x_server: RunningServer,
    graph_state: GraphState,
    graph_server: RunningServer,
) -> None:
    assert x_state.bearer_tokens is not None and graph_state.access_tokens is not None
    x_state.bearer_tokens.add(X_BEARER)
    graph_state.access_tokens.add(GRAPH_TOKEN)
    x_state.add_tweet("@PemkotKupang jalan di Oebobo rusak", author="warga1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARING_")}
    env.update(
        T_X_BEARER=X_BEARER,
        T_X_BASE=x_server.base_url,
        T_GRAPH_TOKEN=GRAPH_TOKEN,
        T_GRAPH_BASE=graph_server.base_url,
        T_PAGE_ID=PAGE_ID,
        T_PROOF=PROOF,
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # The requests really happened and were logged at DEBUG...
    assert "x events 2" in output and "graph page Pemerintah Kota Kupang" in output
    assert "Making API request: GET https://api.twitter.com/2/users/1700000000000000001/mentions" in output
    assert f'"GET /v21.0/{PAGE_ID}?fields=id%2Cname&access_token=*** HTTP/1.1" 200' in output
    # ...with the credentials replaced, at every level, in messages, arguments and tracebacks.
    assert "'Authorization': 'Bearer ***'" in output
    assert "access_token=***&appsecret_proof=***" in output
    for secret in (X_BEARER, "AAAAAAAAAAAAAAAAAAAAAMLhe", GRAPH_TOKEN, PROOF):
        assert secret not in output
