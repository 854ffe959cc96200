"""Meta webhook receiver (Instagram @mentions and comments, Page ``feed``): thin HTTP over the pipeline.

GET answers Meta's subscription handshake; POST checks ``X-Hub-Signature-256`` on the raw body
(403 on a missing or wrong signature), then fetches what the notification names and stores it.
A platform hiccup while fetching answers 503 so Meta delivers the notification again.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from harvester.types import RateLimited, TransientError
from harvester.webhooks import verify_handshake, verify_signature
from jaring.settings import get_settings
from pipelines.harvest import ingest_webhook

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY_BYTES = 1_000_000


@router.get("/meta")
def meta_handshake(request: Request) -> Response:
    """Echo ``hub.challenge`` when ``hub.verify_token`` matches ours (subscription set-up)."""
    settings = get_settings()
    token = settings.meta_verify_token.get_secret_value() if settings.meta_verify_token else ""
    challenge = verify_handshake(dict(request.query_params), token)
    if challenge is None:
        return PlainTextResponse("forbidden", status_code=403)
    return PlainTextResponse(challenge)


@router.post("/meta")
async def meta_notification(request: Request) -> Response:
    """Verify the signature on the raw body, then fetch and store what the notification names."""
    settings = get_settings()
    body = await request.body()
    secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else ""
    if len(body) > MAX_BODY_BYTES or not verify_signature(
        secret, body, request.headers.get("x-hub-signature-256")
    ):
        return PlainTextResponse("invalid signature", status_code=403)
    try:
        payload = json.loads(body)
    except ValueError:
        return PlainTextResponse("invalid JSON", status_code=400)
    try:
        result = await run_in_threadpool(ingest_webhook, payload=payload, settings=settings)
    except (TransientError, RateLimited) as exc:
        log.warning("webhook fetch failed, asking Meta to retry: %s", exc)
        return PlainTextResponse("try again later", status_code=503)
    return JSONResponse(
        {
            "new": len(result.new_post_ids),
            "updated": len(result.updated_post_ids),
            "quarantined": result.quarantined,
        }
    )
