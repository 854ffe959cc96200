"""Meta webhook receiver: handshake, signature on the raw body, fetch of the mentioned content, dedupe with polls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.orm import Session

from harvester.webhooks import verify_signature
from pipelines.harvest import run_source
from pipelines.models import Post, Quarantine
from review.webhooks import router
from standins.graph import GraphState, sign
from standins.server import RunningServer, serve_app
from tests.harvester.conftest import IG_ID, PAGE_ID, HarvestEnv

SECRET = "app-secret-for-tests"


@pytest.fixture
def receiver(harvest_env: HarvestEnv) -> Iterator[RunningServer]:
    app = FastAPI()
    app.include_router(router)
    with serve_app(app) as server:
        yield server


def _post(
    server: RunningServer,
    payload: dict,
    *,
    secret: str = SECRET,
    signature: str | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    raw = body if body is not None else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if signature is None:
        signature = sign(secret, raw)
    if signature:
        headers["x-hub-signature-256"] = signature
    return httpx.post(f"{server.base_url}/webhooks/meta", content=raw, headers=headers, timeout=10)


def test_verify_signature_is_exact() -> None:
    body = b'{"object":"page"}'
    assert verify_signature(SECRET, body, sign(SECRET, body))
    assert not verify_signature(SECRET, body + b" ", sign(SECRET, body))
    assert not verify_signature(SECRET, body, sign("other", body))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "sha1=" + sign(SECRET, body)[7:])
    assert not verify_signature("", body, sign("", body))


def test_handshake_echoes_challenge_only_for_our_token(receiver: RunningServer) -> None:
    ok = httpx.get(
        f"{receiver.base_url}/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = httpx.get(
        f"{receiver.base_url}/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "x"},
    )
    assert bad.status_code == 403


def test_bad_or_missing_signature_is_rejected_and_nothing_stored(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    media = graph_state.add_ig_media(IG_ID, "Jalan rusak @pemkot.kupang")
    payload = graph_state.webhook_ig_mention(IG_ID, media_id=media)
    assert _post(receiver, payload, secret="wrong").status_code == 403
    assert _post(receiver, payload, signature="").status_code == 403
    tampered = json.dumps(payload).encode()
    assert (
        _post(
            receiver, payload, signature=sign(SECRET, tampered), body=tampered.replace(b"instagram", b"page")
        ).status_code
        == 403
    )
    assert graph_state.request_log == []  # nothing fetched
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 0


def test_non_ascii_signature_or_verify_token_is_refused_not_a_server_error(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    media = graph_state.add_ig_media(IG_ID, "Jalan rusak @pemkot.kupang")
    raw = json.dumps(graph_state.webhook_ig_mention(IG_ID, media_id=media)).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": "sha256=\u00e9".encode("latin-1")}
    response = httpx.post(f"{receiver.base_url}/webhooks/meta", content=raw, headers=headers, timeout=10)
    assert response.status_code == 403
    handshake = httpx.get(
        f"{receiver.base_url}/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": "v\u00e9rify-me", "hub.challenge": "1"},
    )
    assert handshake.status_code == 403
    assert not verify_signature(SECRET, raw, "sha256=" + "\u00e9" * 64)
    assert graph_state.request_log == []


def test_oversized_body_is_refused_before_it_is_read(receiver: RunningServer) -> None:
    import socket

    # A declared 100 MB body: answered at once, not buffered in memory first.
    with socket.create_connection((receiver.host, receiver.port), timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/meta HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Hub-Signature-256: sha256=00\r\nContent-Length: 100000000\r\n\r\n{"
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 413")

    # Chunked, no length: reading stops at the cap.
    def chunks() -> Iterator[bytes]:
        yield from (b"x" * 100_000 for _ in range(20))

    response = httpx.post(f"{receiver.base_url}/webhooks/meta", content=chunks(), timeout=10)
    assert response.status_code == 413


def test_instagram_mention_in_comment_and_caption_are_fetched_and_stored(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    media = graph_state.add_ig_media(
        IG_ID, "Foto jalan rusak di Sikumana @pemkot.kupang tolong", tagged=False
    )
    comment = graph_state.add_ig_comment(media, "@pemkot.kupang air sonde mengalir di Bakunase su 3 hari")
    response = _post(receiver, graph_state.webhook_ig_mention(IG_ID, media_id=media, comment_id=comment))
    assert response.status_code == 200 and response.json()["new"] == 1
    response = _post(receiver, graph_state.webhook_ig_mention(IG_ID, media_id=media))
    assert response.status_code == 200 and response.json()["new"] == 1
    posts = {p.external_id: p for p in session.scalars(sa.select(Post))}
    assert posts[comment].text.startswith("@pemkot.kupang air sonde") and posts[comment].source_key == "ig"
    assert posts[comment].thread_external_id == media
    assert posts[media].kind == "ig_media"
    # Meta delivers again: stored once.
    again = _post(receiver, graph_state.webhook_ig_mention(IG_ID, media_id=media, comment_id=comment))
    assert again.json()["new"] == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 2


def test_mention_in_a_comment_asks_only_for_fields_the_mentioned_comment_edge_has(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    # The stand-in answers like Graph: a field the edge does not return is error #100.
    media = graph_state.add_ig_media(IG_ID, "Foto drainase di Oesapa", tagged=False)
    comment = graph_state.add_ig_comment(
        media, "@pemkot.kupang got di Oesapa tersumbat", username="mama.oesapa"
    )
    response = _post(receiver, graph_state.webhook_ig_mention(IG_ID, media_id=media, comment_id=comment))
    assert response.status_code == 200 and response.json() == {"new": 1, "updated": 0, "quarantined": 0}
    assert session.scalar(sa.select(sa.func.count()).select_from(Quarantine)) == 0
    stored = session.scalars(sa.select(Post).where(Post.external_id == comment)).one()
    assert stored.kind == "ig_comment" and stored.text == "@pemkot.kupang got di Oesapa tersumbat"
    assert stored.thread_external_id == media and stored.url == f"https://www.instagram.com/p/{media}/"
    fields = next(q["fields"] for path, q in graph_state.request_log if path.endswith(f"/{IG_ID}"))
    assert fields == f"mentioned_comment.comment_id({comment}){{id,text,timestamp,media{{id,permalink}}}}"


def test_mention_in_a_caption_asks_only_for_fields_the_mentioned_media_edge_has(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    # Meta's mentioned_media fields: caption, comments, comments_count, id, like_count, media_type,
    # media_url, owner, timestamp, username. Anything else (permalink) is error #100 on real Graph.
    media = graph_state.add_ig_media(IG_ID, "Lampu jalan di Oebufu mati @pemkot.kupang", tagged=False)
    response = _post(receiver, graph_state.webhook_ig_mention(IG_ID, media_id=media))
    assert response.status_code == 200 and response.json() == {"new": 1, "updated": 0, "quarantined": 0}
    stored = session.scalars(sa.select(Post).where(Post.external_id == media)).one()
    assert stored.kind == "ig_media" and stored.text == "Lampu jalan di Oebufu mati @pemkot.kupang"
    fields = next(q["fields"] for path, q in graph_state.request_log if path.endswith(f"/{IG_ID}"))
    assert "permalink" not in fields


def test_webhooks_for_a_switched_off_source_are_quarantined_not_ingested(
    receiver: RunningServer, graph_state: GraphState, session: Session, harvest_env: HarvestEnv
) -> None:
    from pipelines.sources import get_source

    harvest_env.set("ig", enabled=False)
    harvest_env.set("fb", enabled=False)
    media = graph_state.add_ig_media(IG_ID, "Foto got mampet di Oesapa", tagged=False)
    comment = graph_state.add_ig_comment(media, "@pemkot.kupang got mampet di Oesapa")
    mention = graph_state.webhook_ig_mention(IG_ID, media_id=media, comment_id=comment)
    post = graph_state.add_post(PAGE_ID, "Jalan di Liliba berlubang")
    # An @mention can only ever arrive this way: answered 200 (Meta must not retry or drop the
    # subscription), kept whole with the reason, not fetched and not stored as a post.
    for payload in (mention, graph_state.webhook_page_feed(PAGE_ID, post)):
        response = _post(receiver, payload)
        assert response.status_code == 200
        assert response.json() == {"new": 0, "updated": 0, "quarantined": 1}
    assert graph_state.request_log == []
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 0
    rows = list(session.scalars(sa.select(Quarantine).order_by(Quarantine.id)))
    assert [(r.source_key, r.platform, r.reason) for r in rows] == [
        ("ig", "instagram", "source ig is switched off"),
        ("fb", "facebook", "source fb is switched off"),
    ]
    assert json.loads(rows[0].raw_body) == {
        "object": "instagram",
        "entry_id": IG_ID,
        "field": "mentions",
        "value": {"media_id": media, "comment_id": comment},
    }
    assert json.loads(rows[1].raw_body)["value"]["post_id"] == post
    source = get_source("ig", harvest_env.path)
    assert source is not None and source.enabled is False


@pytest.mark.parametrize("code", ["190", "102"])
def test_rejected_token_during_a_webhook_fetch_stops_the_source_and_alerts_an_admin(
    receiver: RunningServer, graph_state: GraphState, session: Session, code: str
) -> None:
    from pipelines.models import AuditLog, SourceState

    media = graph_state.add_ig_media(IG_ID, "Foto lampu jalan di Oebufu", tagged=False)
    comment = graph_state.add_ig_comment(media, "@pemkot.kupang lampu jalan di Oebufu mati")
    payload = graph_state.webhook_ig_mention(IG_ID, media_id=media, comment_id=comment)
    graph_state.faults.at_request = {1: code, 2: code}
    for _ in range(2):  # Meta delivers again, or the next mention comes: one alert, not one per delivery
        response = _post(receiver, payload)
        assert response.status_code == 200
        assert response.json() == {"new": 0, "updated": 0, "quarantined": 1}
    rows = list(session.scalars(sa.select(Quarantine)))
    assert len(rows) == 2 and all(f"code {code}" in r.reason and comment in r.raw_body for r in rows)
    state = session.get(SourceState, "ig")
    assert state is not None and state.health == "stopped"
    assert state.last_error.startswith(f"Graph token rejected (code {code})")
    alerts = list(session.scalars(sa.select(AuditLog)))
    assert [(a.action, a.object_id) for a in alerts] == [("harvest.source_stopped", "ig")]
    assert alerts[0].details["reason"] == state.last_error and alerts[0].details["via"] == "webhook"
    # Like a stop found by a poll: the scheduled run does not call Graph until an admin re-enables it.
    requests = graph_state.faults.requests
    assert run_source(source_key="ig").status == "stopped"
    assert graph_state.faults.requests == requests


def test_page_feed_webhook_and_poll_store_the_post_once(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    post = graph_state.add_post(
        PAGE_ID,
        "Pelayanan di Puskesmas Oepoi lambat sekali",
        created_at=datetime.now(UTC) - timedelta(minutes=3),
    )
    comment = graph_state.add_comment(post, "Betul, beta tunggu 4 jam")
    assert _post(receiver, graph_state.webhook_page_feed(PAGE_ID, post)).json()["new"] == 1
    assert _post(receiver, graph_state.webhook_page_feed(PAGE_ID, comment)).json()["new"] == 1
    assert run_source(source_key="fb").new_post_ids == []
    stored = session.scalars(sa.select(Post).where(Post.external_id == comment)).one()
    assert stored.thread_external_id == post and stored.parent_external_id == post
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 2


def test_unknown_object_in_webhook_is_quarantined_not_lost(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    payload = graph_state.webhook_ig_mention(IG_ID, media_id="999", comment_id="404404")
    response = _post(receiver, payload)
    assert response.status_code == 200 and response.json()["quarantined"] == 1
    row = session.scalars(sa.select(Quarantine)).one()
    assert "404404" in row.raw_body and "webhook fetch failed" in row.reason


def test_instagram_comments_change_without_an_id_is_quarantined_not_lost(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    payload = {
        "object": "instagram",
        "entry": [{"id": IG_ID, "time": 1, "changes": [{"field": "comments", "value": {"text": "Jalan rusak"}}]}],
    }
    response = _post(receiver, payload)
    assert response.status_code == 200 and response.json()["quarantined"] == 1
    row = session.scalars(sa.select(Quarantine)).one()
    assert row.reason == "comments change names no comment" and "Jalan rusak" in row.raw_body


def test_graph_outage_during_webhook_asks_meta_to_retry(
    receiver: RunningServer, graph_state: GraphState, session: Session
) -> None:
    media = graph_state.add_ig_media(IG_ID, "Jalan rusak @pemkot.kupang")
    graph_state.faults.rate = 1.0
    response = _post(receiver, graph_state.webhook_ig_mention(IG_ID, media_id=media))
    assert response.status_code == 503
    graph_state.faults.rate = 0.0
    assert _post(receiver, graph_state.webhook_ig_mention(IG_ID, media_id=media)).json()["new"] == 1
