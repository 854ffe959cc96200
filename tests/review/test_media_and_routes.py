"""Same-origin media proxy, the webhook prefix outside CSRF, and the other routers' integration."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import Response

from pipelines.models import Post
from standins.server import serve_app
from tests.review.conftest import TestClient

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


seen_hosts: list[str] = []


@pytest.fixture
def image_server():
    images = FastAPI()

    @images.get("/seen-host.png")
    def seen_host(request: Request) -> Response:
        seen_hosts.append(request.headers.get("host", ""))
        return Response(PNG, media_type="image/png")

    @images.get("/ok.png")
    def ok() -> Response:
        return Response(PNG, media_type="image/png")

    @images.get("/page.html")
    def page() -> Response:
        return Response("<script>alert(1)</script>", media_type="text/html")

    with serve_app(images) as server:
        yield server.base_url


def _set_media(db, post_id: int, urls: list[str]) -> None:
    db.execute(sa.update(Post).where(Post.id == post_id).values(media=[{"type": "photo", "url": u} for u in urls]))
    db.commit()


def test_media_proxy_serves_only_the_posts_own_images(browserish, seeded, db, image_server) -> None:
    _set_media(db, seeded["jalan"], [f"{image_server}/ok.png", f"{image_server}/page.html", "file:///etc/passwd"])
    c = browserish()
    c.login("reviewer")
    ok = c.client.get(f"/media/{seeded['jalan']}/0")
    assert ok.status_code == 200 and ok.content == PNG and ok.headers["content-type"] == "image/png"
    assert c.client.get(f"/media/{seeded['jalan']}/1").status_code == 404  # not an image
    assert c.client.get(f"/media/{seeded['jalan']}/2").status_code == 404  # not http(s)
    assert c.client.get(f"/media/{seeded['jalan']}/3").status_code == 404  # no such item
    viewer = browserish()
    viewer.login("viewer")
    assert viewer.client.get(f"/media/{seeded['jalan']}/0").status_code == 403


def test_media_proxy_refuses_private_addresses_in_production() -> None:
    from review import media

    assert media.public_address("127.0.0.1") is None and media.public_address("10.1.2.3") is None
    assert media.public_address("no-such-host.invalid") is None


def test_public_only_fetch_connects_to_the_address_it_checked_not_to_a_second_lookup(image_server) -> None:
    """DNS rebinding: a name may resolve to a public address for the check and a private one for the fetch.

    ``images.invalid`` resolves nowhere; the resolver given vouches for the image server's address. Only a
    fetch that connects to the checked address (and not to a fresh lookup of the name) can get the image,
    and it still names the host it asked for.
    """
    from urllib.parse import urlsplit

    from review import media

    port = urlsplit(image_server).port
    seen_hosts.clear()
    status, body, content_type = media.fetch_image(
        f"http://images.invalid:{port}/seen-host.png", timeout=5, public_only=True, resolve=lambda host: "127.0.0.1"
    )
    assert (status, body, content_type) == (200, PNG, "image/png")
    assert seen_hosts == [f"images.invalid:{port}"]
    refused = media.fetch_image(f"{image_server}/ok.png", timeout=5, public_only=True, resolve=lambda host: None)
    assert refused == (403, b"", "")
    assert media.fetch_image(f"{image_server}/ok.png", timeout=5, public_only=True)[0] == 403  # loopback itself


def test_webhook_prefix_is_outside_csrf_but_keeps_its_signature_check(app) -> None:
    with TestClient(app) as client:
        response = client.post("/webhooks/meta", content=b"{}", headers={"content-type": "application/json"})
        assert "CSRF" not in response.text  # reached the webhook handler, which checks the signature itself
        assert response.status_code == 403 and "signature" in response.text


def test_forwarding_views_are_mounted_with_nav_link(browserish) -> None:
    import importlib.util

    c = browserish()
    c.login("reviewer")
    inbox = c.client.get("/kotak-masuk").text
    if importlib.util.find_spec("review.forwarding_views") is not None:
        assert c.client.get("/lapor").status_code == 200
        assert 'href="/lapor"' in inbox
