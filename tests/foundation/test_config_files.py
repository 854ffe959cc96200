"""The deployment files agree with the code: compose commands exist, every variable is a real setting."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

from jaring.cli import app as cli_app
from jaring.settings import REPO_ROOT, Settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_VARS = {f"JARING_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _cli_commands() -> set[str]:
    import typer.main

    group = typer.main.get_command(cli_app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_compose_has_every_service_with_an_image_or_build(compose: dict) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "flower"} <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name


def test_compose_healthchecks_and_one_shot_migration(compose: dict) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["command"] == ["jaring", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_commands_are_real_entry_points(compose: dict) -> None:
    commands = _cli_commands()
    seen = set()
    for name, service in compose["services"].items():
        command = service.get("command")
        if not command or name in ("postgres", "redis"):
            continue
        program = command[0]
        assert program in ("jaring", "celery"), f"{name}: {command}"
        if program == "jaring":
            assert command[1] in commands, f"{name}: `jaring {command[1]}` is not a command"
            seen.add(command[1])
    assert {"migrate", "serve", "worker", "beat"} <= seen
    # Queues named in worker commands are queues the Celery app routes to.
    from pipelines.celery_app import QUEUES

    for service in compose["services"].values():
        command = service.get("command") or []
        if command[:2] == ["jaring", "worker"]:
            queues = command[command.index("--queues") + 1].split(",")
            assert set(queues) <= set(QUEUES)


def test_compose_variables_are_real_settings_and_secrets_are_required(compose: dict) -> None:
    raw = (ROOT / "docker-compose.yml").read_text()
    passed = set(re.findall(r"\b(JARING_[A-Z0-9_]+)\s*:", raw))
    assert passed, "compose passes no JARING_ settings"
    assert passed <= SETTING_VARS, passed - SETTING_VARS
    for secret in ("JARING_SECRET_KEY", "POSTGRES_PASSWORD", "JARING_META_APP_SECRET"):
        assert re.search(r"\$\{" + secret + r":\?", raw), f"{secret} must use ${{VAR:?}}"


def test_env_example_documents_exactly_the_settings() -> None:
    documented = set(re.findall(r"^(JARING_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert documented == SETTING_VARS, {
        "undocumented": SETTING_VARS - documented,
        "stale": documented - SETTING_VARS,
    }


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in (
        "jaring",
        "harvester",
        "classifier",
        "pipelines",
        "review",
        "standins",
        "models",
        "config",
    ):
        assert f"COPY {package} ./{package}" in dockerfile


def test_dockerfile_points_file_settings_at_the_copies_under_app() -> None:
    # The image pip-installs the packages, so REPO_ROOT there is site-packages: a default outside an
    # installed package (config/, models/, data/) does not exist in the container unless ENV moves it.
    dockerfile = (ROOT / "Dockerfile").read_text()
    env = dict(re.findall(r"\b(JARING_[A-Z0-9_]+)=(\S+)", dockerfile))
    installed = {"jaring", "harvester", "classifier", "pipelines", "review", "standins"}
    for name, field in Settings.model_fields.items():
        if not isinstance(field.default, Path) or not field.default.is_relative_to(REPO_ROOT):
            continue
        relative = field.default.relative_to(REPO_ROOT)
        if relative.parts[0] in installed:
            continue  # package data, installed with the code
        variable = f"JARING_{name.upper()}"
        assert variable in env, f"{variable} (default {relative}) is not set in the Dockerfile"
        assert PurePosixPath(env[variable]) == PurePosixPath("/app", *relative.parts), variable
        if relative.parts[0] != "data":
            assert f"COPY {relative.parts[0]} ./{relative.parts[0]}" in dockerfile, variable


def test_app_containers_share_one_writable_config_directory(compose: dict) -> None:
    # The admin's source on/off switch (/sumber) rewrites the sources file in the web container; the
    # dispatcher (beat) and the harvest worker read it in theirs. One volume, writable by the image's user.
    dockerfile = (ROOT / "Dockerfile").read_text()
    config_dir = str(PurePosixPath(dict(re.findall(r"\b(JARING_[A-Z0-9_]+)=(\S+)", dockerfile))["JARING_SOURCES_FILE"]).parent)
    volumes = set()
    for name, service in compose["services"].items():
        if (service.get("command") or [None, None])[:2] in (["jaring", "serve"], ["jaring", "worker"], ["jaring", "beat"]):
            mounted = [v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == config_dir]
            assert mounted, f"{name}: {config_dir} is not on a shared volume"
            volumes.update(mounted)
    assert len(volumes) == 1 and next(iter(volumes)) in compose["volumes"]
    user = re.findall(r"^USER (\S+)$", dockerfile, re.M)[-1]
    assert re.search(rf"chown -R {user} [^&\n]*{re.escape(config_dir)}", dockerfile), f"{config_dir} not owned by {user}"
