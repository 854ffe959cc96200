"""Settings fail fast; the CLI lists every command with help."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from jaring.cli import app
from jaring.settings import DEFAULT_SECRET_KEY, Settings

runner = CliRunner()


def test_defaults_are_embedded_and_real_hosts(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'jaring.sqlite'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    assert settings.twitter_api_base == "https://api.twitter.com"
    assert settings.graph_api_base == "https://graph.facebook.com"
    assert settings.lapor_api_base.startswith("https://")


def test_environment_overrides_and_secrets_stay_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARING_TWITTER_API_BASE", "http://127.0.0.1:9999")
    monkeypatch.setenv("JARING_LAPOR_API_TOKEN", "token-value-123")
    settings = Settings()
    assert settings.twitter_api_base == "http://127.0.0.1:9999"
    assert settings.lapor_api_token is not None
    assert settings.lapor_api_token.get_secret_value() == "token-value-123"
    assert "token-value-123" not in repr(settings)
    assert "token-value-123" not in settings.model_dump_json()


def test_production_refuses_default_or_short_secret() -> None:
    with pytest.raises(ValueError, match="JARING_SECRET_KEY"):
        Settings(environment="production").require_production_secrets()
    with pytest.raises(ValueError, match="32 characters"):
        Settings(environment="production", secret_key="short").require_production_secrets()
    Settings(environment="production", secret_key="x" * 40).require_production_secrets()
    Settings(environment="development", secret_key=DEFAULT_SECRET_KEY).require_production_secrets()


def test_invalid_values_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARING_LAPOR_SENDER", "carrier-pigeon")
    with pytest.raises(ValidationError):
        Settings()


def test_cli_lists_every_command_with_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "demo",
        "serve",
        "worker",
        "beat",
        "migrate",
        "harvest",
        "classify",
        "export",
        "users",
        "train",
        "evaluate",
        "models",
    ):
        assert command in result.output, command
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert (command.help or "").strip(), f"`jaring {name}` has no help text"


def test_migrate_then_export_masks_personal_data(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jaring.db import session_scope
    from jaring.settings import reset_settings_cache
    from pipelines.models import Post

    monkeypatch.setenv("JARING_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    reset_settings_cache()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    with session_scope() as session:
        session.add(
            Post(
                platform="facebook",
                external_id="p1",
                author_name="Budi 081234567890",
                text="Hubungi 0812-3456-7890, NIK 5371012345670001, budi@example.com",
                raw={},
            )
        )
    out = tmp_path / "posts.jsonl"
    result = runner.invoke(app, ["export", "posts", "--output", str(out)])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text().splitlines()[0])
    for secret in ("0812-3456-7890", "5371012345670001", "budi@example.com", "081234567890"):
        assert secret not in json.dumps(row)
    assert row["platform"] == "facebook" and "***@example.com" in row["text"]
