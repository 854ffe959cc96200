"""Fixtures for the review web app: an app on a migrated test database, seeded users and posts."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

with warnings.catch_warnings():
    # Starlette 1.0 nags that its TestClient will move from httpx to httpx2; the client works as is.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from jaring.db import make_engine
from jaring.settings import Settings
from pipelines.models import Classification, Post, User
from review.app import create_app
from review.auth import hash_password

PASSWORD = "kata-sandi-uji-123"
_HASH = hash_password(PASSWORD)  # argon2 is deliberately slow: hash once for every test user
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ROLES = ("viewer", "reviewer", "analyst", "admin")


def seed(url: str) -> dict[str, int]:
    """Users of every role and a handful of posts; returns names -> ids."""
    engine = make_engine(url)
    ids: dict[str, int] = {}
    now = datetime.now(UTC)
    with sessionmaker(bind=engine)() as s:
        for role in ROLES:
            user = User(username=role, full_name=f"Uji {role}", password_hash=_HASH, role=role)
            s.add(user)
            s.flush()
            ids[f"user:{role}"] = user.id
        specs = [
            ("jalan", "twitter", "Jalan di Oebobo rusak parah, lubang besar dekat pasar. Tolong perbaiki! 081234567890",
             "keluhan", 0.92, "infrastruktur", "PUPR", "Oebobo", 0.95),
            ("air", "facebook", "Air PDAM di Maulafa sonde mengalir su tiga hari", "keluhan", 0.81, "air_sda",
             "AIR_MINUM", "Maulafa", 0.9),
            ("sampah", "instagram", "Sampah menumpuk di Pasir Panjang, bau sekali", "keluhan", 0.55, "sampah",
             "LINGKUNGAN_HIDUP", "Kota Lama", 0.7),
            ("xss", "twitter", XSS, "keluhan", 0.5, "lainnya", "PEMDA_UMUM", None, 0.6),
            ("bukan", "twitter", "Selamat pagi Kupang, cuaca cerah hari ini", "bukan", 0.9, None, None, None, 0.1),
        ]
        for i, (name, platform, text, relevance, score, topic, agency, kecamatan, priority) in enumerate(specs):
            post = Post(platform=platform, external_id=f"ext-{name}", author_handle=f"warga_{name}",
                        author_name=f"Warga {name.title()}", text=text, url=f"https://example.invalid/{name}",
                        created_at=now - timedelta(hours=i + 1), status="queued", relevance=relevance,
                        relevance_score=score, topic=topic, topic_score=0.7 if topic else None, agency=agency,
                        agency_score=0.6 if agency else None, kecamatan=kecamatan, priority=priority, raw={},
                        media=[{"type": "photo", "url": f"https://example.invalid/{name}.jpg"}] if name == "jalan" else [])
            s.add(post)
            s.flush()
            ids[name] = post.id
            s.add(Classification(post_id=post.id, model_version="uji-1", relevance=relevance, relevance_score=score,
                                 topic=topic, topic_score=0.7, agency=agency, agency_score=0.6, scores={},
                                 explanation={"relevance": [["rusak", 1.25], ["tolong", 0.5], ["<b>x</b>", -0.2]]}))
        # A near-duplicate of "jalan".
        dup = Post(platform="facebook", external_id="ext-jalan-2", author_handle="warga_lain",
                   text="Jalan di Oebobo rusak parah, lubang besar dekat pasar!!", created_at=now, status="queued",
                   relevance="keluhan", relevance_score=0.9, topic="infrastruktur", agency="PUPR", priority=0.94,
                   raw={}, dup_group_id=ids["jalan"], duplicate_of_id=ids["jalan"], duplicate_reason="simhash")
        s.add(dup)
        s.flush()
        ids["jalan2"] = dup.id
        s.get(Post, ids["jalan"]).dup_group_id = ids["jalan"]  # type: ignore[union-attr]
        s.commit()
    engine.dispose()
    return ids


def app_settings(url: str) -> Settings:
    """Settings for an app on the test database."""
    return Settings(database_url=url, environment="test", secret_key=SecretStr("uji-" + "x" * 40))


@pytest.fixture
def seeded(db_url: str) -> dict[str, int]:
    """The seeded ids on the parametrised (SQLite and PostgreSQL) test database."""
    return seed(db_url)


@pytest.fixture
def app(db_url: str, seeded: dict[str, int]) -> Iterator[FastAPI]:
    """The web app on the seeded test database."""
    application = create_app(app_settings(db_url))
    yield application
    application.state.engine.dispose()


@pytest.fixture
def db(app: FastAPI) -> Iterator[Session]:
    """A session on the app's database, for asserting what the app stored."""
    with app.state.session_factory() as s:
        yield s


def csrf_from(html: str) -> str:
    """The CSRF token in a rendered form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


class Browserish:
    """A TestClient that logs in like a browser and posts forms with the page's CSRF token."""

    def __init__(self, app: FastAPI) -> None:
        self.client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        self.token = ""

    def login(self, username: str, password: str = PASSWORD) -> object:
        page = self.client.get("/masuk")
        response = self.client.post("/masuk", data={"username": username, "password": password,
                                                    "csrf_token": csrf_from(page.text), "next": "/"})
        if response.status_code == 303:
            self.refresh_token()
        return response

    def refresh_token(self, path: str = "/dasbor") -> None:
        self.token = csrf_from(self.client.get(path).text)

    def post(self, path: str, data: dict[str, object] | None = None) -> object:
        return self.client.post(path, data={**(data or {}), "csrf_token": self.token})


@pytest.fixture
def browserish(app: FastAPI) -> Iterator[Browserish]:
    """Factory of logged-out clients."""
    clients: list[Browserish] = []

    def make() -> Browserish:
        c = Browserish(app)
        clients.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in clients:
        c.client.close()


@pytest.fixture(autouse=True)
def _forget_login_failures() -> Iterator[None]:
    """The per-client login limiter is process memory: start every test with a clean slate."""
    from review import auth

    auth._client_failures.clear()
    yield
    auth._client_failures.clear()
