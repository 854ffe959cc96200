"""Same-origin thumbnails of a post's media.

Pages never load anything from another origin (the CSP says so), so a post's images are fetched by
the server: only URLs stored on that post, only http(s), only images, with a timeout and a size cap,
and in production never from loopback or private addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from pipelines.models import Post, User
from review.auth import STAFF_ROLES, get_db, require_role

router = APIRouter()
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _public_host(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved:
            return False
    return True


@router.get("/media/{post_id}/{index}")
def media(post_id: int, index: int, request: Request, _user: User = Depends(require_role(*STAFF_ROLES)),
          db: Session = Depends(get_db)) -> Response:
    """The ``index``-th image of a post, proxied through this origin."""
    post = db.get(Post, post_id)
    items = [m for m in (post.media or []) if isinstance(m, dict)] if post else []
    if not 0 <= index < len(items):
        return Response(status_code=404)
    item = items[index]
    url = str(item.get("preview_url") or item.get("thumbnail_url") or item.get("url") or "")
    parts = urlsplit(url)
    settings = request.app.state.settings
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Response(status_code=404)
    if settings.environment == "production" and not _public_host(parts.hostname):
        return Response(status_code=403)
    try:
        with httpx.Client(timeout=settings.http_timeout_seconds, follow_redirects=False) as client, \
                client.stream("GET", url) as upstream:
            content_type = upstream.headers.get("content-type", "").split(";")[0].strip().lower()
            if upstream.status_code != 200 or content_type not in IMAGE_TYPES:
                return Response(status_code=404)
            body = bytearray()
            for chunk in upstream.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_IMAGE_BYTES:
                    return Response(status_code=413)
    except httpx.HTTPError:
        return Response(status_code=502)
    return Response(bytes(body), media_type=content_type,
                    headers={"Cache-Control": "private, max-age=3600", "Content-Security-Policy": "default-src 'none'"})
