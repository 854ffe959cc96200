"""The reply to the citizen: tweepy and facebook-sdk, unpatched, against small local HTTP servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from jaring.settings import reset_settings_cache
from pipelines import outbox, status_sync
from pipelines.models import Complaint, Post
from standins.server import serve_app
from tests.forwarding.conftest import ForwardEnv, add_complaint, write_policy


@pytest.fixture
def platforms(forward_env: ForwardEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A fake X and Graph API that record the replies they get; replies on for X and Facebook only."""
    seen: dict[str, Any] = {"tweets": [], "comments": [], "fail": False}
    fake = FastAPI()

    @fake.post("/2/tweets")
    async def create_tweet(request: Request) -> Any:
        if seen["fail"]:
            return JSONResponse({"title": "Service Unavailable"}, status_code=503)
        seen["tweets"].append({"auth": request.headers.get("authorization"), **(await request.json())})
        return JSONResponse({"data": {"id": "1860000000000000001", "text": "ok"}}, status_code=201)

    @fake.post("/v21.0/{object_id}/comments")
    async def comment(object_id: str, request: Request) -> Any:
        form = dict(await request.form())
        seen["comments"].append({"object_id": object_id, **form})
        return {"id": f"{object_id}_99"}

    server = serve_app(fake)
    policy = write_policy(tmp_path / "reply.yaml", reply={"twitter": True, "facebook": True, "instagram": False,
                                                          "message": "Sudah kami teruskan: {tracking_id} {link}"})
    for key, value in {
        "JARING_FORWARD_POLICY_FILE": str(policy),
        "JARING_TWITTER_API_BASE": server.base_url,
        "JARING_GRAPH_API_BASE": server.base_url,
        "JARING_TWITTER_REPLY_TOKEN": "user-context-token",
        "JARING_FACEBOOK_PAGE_TOKEN": "page-token",
    }.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    yield seen
    server.stop()


def forwarded(session: Session, platform: str) -> Complaint:
    complaint = add_complaint(session, platform=platform)
    post = session.get(Post, complaint.post_id)
    post.author_handle, post.author_name = "budi_kupang", "Budi Santoso"  # type: ignore[union-attr]
    outbox_id = outbox.enqueue(session=session, complaint=complaint, actor="rina").id
    session.commit()
    assert outbox.deliver(outbox_id=outbox_id).outcome == "sent"
    session.expire_all()
    return session.get(Complaint, complaint.id)  # type: ignore[return-value]


def test_reply_on_x_once_with_the_public_link_and_nothing_personal(
    forward_env: ForwardEnv, platforms: dict, session: Session
) -> None:
    complaint = forwarded(session, "twitter")
    post = session.get(Post, complaint.post_id)
    assert status_sync.reply_to_citizen(complaint_id=complaint.id).startswith("replied")
    [tweet] = platforms["tweets"]
    assert tweet["reply"] == {"in_reply_to_tweet_id": post.external_id}  # type: ignore[union-attr]
    assert tweet["auth"] == "Bearer user-context-token"
    assert tweet["text"] == (f"Sudah kami teruskan: {complaint.tracking_id} "
                             f"{forward_env.lapor_url}/pengaduan/{complaint.tracking_id}")
    assert "budi" not in tweet["text"].lower() and "Budi" not in tweet["text"]
    assert status_sync.reply_to_citizen(complaint_id=complaint.id) == "skipped: already replied"
    assert len(platforms["tweets"]) == 1


def test_reply_on_facebook_and_not_where_switched_off(
    forward_env: ForwardEnv, platforms: dict, session: Session
) -> None:
    facebook = forwarded(session, "facebook")
    instagram = forwarded(session, "instagram")
    assert status_sync.reply_to_citizen(complaint_id=facebook.id).startswith("replied")
    post = session.get(Post, facebook.post_id)
    [comment] = platforms["comments"]
    assert comment["object_id"] == post.external_id and facebook.tracking_id in comment["message"]  # type: ignore[union-attr]
    assert status_sync.reply_to_citizen(complaint_id=instagram.id) == "skipped: replies off for this platform"


def test_a_server_error_is_not_retried_into_a_second_public_reply(
    forward_env: ForwardEnv, platforms: dict, session: Session
) -> None:
    complaint = forwarded(session, "twitter")
    platforms["fail"] = True
    assert status_sync.reply_to_citizen(complaint_id=complaint.id) == "unknown: not retried"
    platforms["fail"] = False
    assert status_sync.reply_to_citizen(complaint_id=complaint.id) == "skipped: already replied"
    assert platforms["tweets"] == []
