"""``jaring users create`` and the ``serve`` command's registration."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from jaring.cli import web
from pipelines.models import AuditLog, User
from review.auth import verify_password


def _app() -> typer.Typer:
    app = typer.Typer()
    web.register(app)
    return app


def test_users_create_takes_the_password_from_env_not_arguments(session, monkeypatch) -> None:
    monkeypatch.setenv(web.PASSWORD_ENV, "sandi-dari-lingkungan")
    result = CliRunner().invoke(_app(), ["users", "create", "--username", "Humas1", "--role", "reviewer"])
    assert result.exit_code == 0, result.output
    assert "sandi-dari-lingkungan" not in result.output
    user = session.scalar(sa.select(User).where(User.username == "humas1"))
    assert user.role == "reviewer" and verify_password(user.password_hash, "sandi-dari-lingkungan")
    assert session.scalar(sa.select(AuditLog.actor).where(AuditLog.action == "user.create")) == "system:cli"


def test_users_create_prompts_and_rejects_bad_roles(session, monkeypatch) -> None:
    runner = CliRunner()
    bad = runner.invoke(_app(), ["users", "create", "--username", "x", "--role", "raja"], input="sandi-rahasia-1\n" * 2)
    assert bad.exit_code == 1 and "Peran" in bad.output
    ok = runner.invoke(_app(), ["users", "create", "--username", "pimpinan", "--role", "viewer"],
                       input="sandi-rahasia-1\nsandi-rahasia-1\n")
    assert ok.exit_code == 0, ok.output
    assert session.scalar(sa.select(User.role).where(User.username == "pimpinan")) == "viewer"


def test_serve_is_registered() -> None:
    result = CliRunner().invoke(_app(), ["serve", "--help"])
    assert result.exit_code == 0 and "review web app" in result.output


def test_access_log_arguments_are_masked_and_stay_a_tuple() -> None:
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/kotak-masuk?q=081234567890&e=budi@mail.com", "1.1", 200), None)
    assert web.MaskAccessArgs().filter(record)
    assert isinstance(record.args, tuple) and record.args[4] == 200
    assert "081234567890" not in record.getMessage() and "budi@mail.com" not in record.getMessage()


@pytest.mark.parametrize(
    ("target", "secret"),
    [
        ("/kotak-masuk?q=budi%40mail.com", "budi%40mail.com"),  # a browser sends @ as %40
        ("/kotak-masuk?q=0812+3456+7890&status=antre", "3456+7890"),  # and spaces as +
        ("/kotak-masuk?q=5371%200123%204567%200001", "0123%204567"),
        ("/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158", "verify-me"),
    ],
)
def test_access_log_masks_personal_data_and_secrets_in_encoded_query_strings(target: str, secret: str) -> None:
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", target, "1.1", 200), None)
    assert web.MaskAccessArgs().filter(record)
    line = record.getMessage()
    assert secret not in line and line.startswith('127.0.0.1:5 - "GET /') and line.endswith('HTTP/1.1" 200')
    assert target.split("?")[0] + "?" in line


def test_serve_trusts_forwarded_headers_from_the_configured_proxies_only(sqlite_url, tmp_path) -> None:
    """A TLS proxy in another container (here 127.0.0.2) passes on the address of the reviewer behind it."""
    import os
    import socket
    import subprocess
    import sys

    import httpx

    from tests.conftest import wait_for
    from tests.review.conftest import csrf_from

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARING_") or k.startswith("JARING_TEST_")}
    env.update(JARING_DATABASE_URL=sqlite_url, JARING_DATA_DIR=str(tmp_path / "data"), JARING_ENVIRONMENT="test",
               JARING_WEB_HOST="127.0.0.1", JARING_WEB_PORT=str(port), JARING_FORWARDED_ALLOW_IPS="127.0.0.2")
    server = subprocess.Popen([sys.executable, "-m", "jaring.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def failed_login_from(proxy: str, forwarded_for: str) -> None:
        headers = {"X-Forwarded-For": forwarded_for}
        with httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=proxy), headers=headers,
                          timeout=10) as client:
            page = client.get("/masuk")
            client.post("/masuk", data={"username": "budi", "password": "salah-sekali", "next": "/",
                                        "csrf_token": csrf_from(page.text)})

    def answering() -> bool:
        assert server.poll() is None, "jaring serve exited"
        try:
            httpx.get(f"{base}/masuk", timeout=1)
        except httpx.TransportError:
            return False
        return True

    try:
        wait_for(answering, 30, what="jaring serve to answer")
        failed_login_from("127.0.0.2", "203.0.113.7")  # the trusted proxy
        failed_login_from("127.0.0.3", "198.51.100.9")  # anyone else cannot choose the address it is logged as
    finally:
        server.terminate()
        server.wait(15)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        clients = conn.execute(sa.select(AuditLog.details).where(AuditLog.action == "auth.login_failed")
                               .order_by(AuditLog.id)).scalars().all()
    engine.dispose()
    assert [d["client"] for d in clients] == ["203.0.113.7", "127.0.0.3"]
