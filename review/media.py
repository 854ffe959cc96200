"""Same-origin thumbnails of a post's media.

Pages never load anything from another origin (the CSP says so), so a post's images are fetched by
the server: only URLs stored on that post, only http(s), only images, with a timeout and a size cap,
and in production never from loopback or private addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from pipelines.models import Post, User
from review.auth import STAFF_ROLES, get_db, require_role

router = APIRouter()
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
                or address.is_multicast or address.is_unspecified)


def public_address(host: str) -> str | None:
    """The address to connect to for ``host``: its first one, or None unless every one of them is public."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not all(_is_public(a) for a in addresses):
        return None
    return str(addresses[0])


def fetch_image(
    url: str, *, timeout: float, public_only: bool, resolve: Callable[[str], str | None] = public_address
) -> tuple[int, bytes, str]:
    """(HTTP status for our answer, image bytes, content type) of an http(s) image URL.

    With ``public_only`` the host is resolved once, every address must be public, and the request goes
    to the address that was checked (the name stays in the Host header and TLS SNI): resolving it again
    to connect would let a DNS server answer a public address to the check and a private one to the
    fetch (DNS rebinding).
    """
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return 404, b"", ""
    target, headers, extensions = url, {}, {}
    if public_only:
        address = resolve(host)
        if address is None:
            return 403, b"", ""
        netloc = f"[{address}]" if ":" in address else address
        if parts.port:
            netloc += f":{parts.port}"
        target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        name = host.encode("idna").decode("ascii")
        headers["Host"] = f"{name}:{parts.port}" if parts.port else name
        if parts.scheme == "https":
            extensions["sni_hostname"] = name  # and the certificate is checked against the name
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client, \
                client.stream("GET", target, headers=headers, extensions=extensions) as upstream:
            content_type = upstream.headers.get("content-type", "").split(";")[0].strip().lower()
            if upstream.status_code != 200 or content_type not in IMAGE_TYPES:
                return 404, b"", ""
            body = bytearray()
            for chunk in upstream.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_IMAGE_BYTES:
                    return 413, b"", ""
    except httpx.HTTPError:
        return 502, b"", ""
    return 200, bytes(body), content_type


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
    settings = request.app.state.settings
    status, body, content_type = fetch_image(
        url, timeout=settings.http_timeout_seconds, public_only=settings.environment == "production"
    )
    if status != 200:
        return Response(status_code=status)
    return Response(body, media_type=content_type,
                    headers={"Cache-Control": "private, max-age=3600", "Content-Security-Policy": "default-src 'none'"})
