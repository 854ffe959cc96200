"""Same-origin media proxy, the webhook prefix outside CSRF, and the other routers' integration."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import Response

from pipelines.models import Post
from standins.server import serve_app
from tests.review.conftest import TestClient

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.fixture
def image_server():
    images = FastAPI()

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

    assert media._public_host("127.0.0.1") is False and media._public_host("10.1.2.3") is False
    assert media._public_host("no-such-host.invalid") is False


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
