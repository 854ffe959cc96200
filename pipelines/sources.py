"""Harvest sources as configuration (``config/sources.yaml``): what to poll, how often, with which token.

A source names its platform, the accounts/pages/IG business accounts to watch, search queries,
its schedule and whether it is on, and the *name* of the environment variable that holds its
credential (never the credential itself). The file is re-read by every harvest job, so turning a
source off takes effect without restarting anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from jaring.settings import Settings, get_settings

PLATFORMS = ("twitter", "facebook", "instagram")


class SourceConfigError(ValueError):
    """The sources file is unusable; the message says where."""


@dataclass(frozen=True)
class SourceConfig:
    """One configured source."""

    key: str
    platform: str
    enabled: bool = True
    schedule_seconds: int = 300
    description: str = ""
    credentials_env: str = ""
    accounts: tuple[dict[str, str], ...] = ()  # X: [{"id": "...", "handle": "..."}]
    queries: tuple[str, ...] = ()  # X recent search queries
    page_ids: tuple[str, ...] = ()  # Facebook pages
    ig_account_ids: tuple[str, ...] = ()  # Instagram business accounts
    own_usernames: tuple[str, ...] = ()  # IG usernames of the account itself (its replies are skipped)
    overlap_minutes: int = 30
    first_run_lookback_hours: int = 72
    comment_window_days: int = 14
    page_size: int = 100
    max_wait_seconds: float = 60.0
    lease_seconds: int = 900
    extra: dict[str, Any] = field(default_factory=dict)

    def credential(self, settings: Settings | None = None) -> str:
        """The credential, read now from the environment variable the source names."""
        settings = settings or get_settings()
        name = self.credentials_env or _DEFAULT_CREDENTIAL[self.platform]
        value = os.environ.get(name, "")
        if not value and name.startswith("JARING_"):
            secret = getattr(settings, name.removeprefix("JARING_").lower(), None)
            value = secret.get_secret_value() if secret is not None else ""
        return value


# The plain-valued settings and what YAML must give for each (a whole number is a fine float).
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    f.name: (int, float) if isinstance(f.default, float) else (type(f.default),)
    for f in fields(SourceConfig)
    if isinstance(f.default, bool | int | float | str) and f.name not in ("key", "platform")
}

_DEFAULT_CREDENTIAL = {
    "twitter": "JARING_TWITTER_BEARER_TOKEN",
    "facebook": "JARING_FACEBOOK_PAGE_TOKEN",
    "instagram": "JARING_INSTAGRAM_TOKEN",
}


# A source's credential is sent to a social platform, so the variable it names must be one of the
# platform tokens, or another JARING_*_TOKEN the deployment adds (a second X account, an OPD's page);
# never one of our own secrets.
_PLATFORM_CREDENTIAL_NAME = re.compile(r"JARING_[A-Z0-9_]+_TOKEN")
_NOT_PLATFORM_CREDENTIALS = frozenset({"JARING_LAPOR_API_TOKEN", "JARING_META_VERIFY_TOKEN"})


def _is_platform_credential(name: str) -> bool:
    return name in _DEFAULT_CREDENTIAL.values() or (
        _PLATFORM_CREDENTIAL_NAME.fullmatch(name) is not None and name not in _NOT_PLATFORM_CREDENTIALS
    )


def _tuple(value: object, where: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SourceConfigError(f"{where}: expected a list")
    return tuple(value)


def parse_sources(data: object, *, origin: str = "sources") -> list[SourceConfig]:
    """Validate the parsed YAML document and build the sources."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise SourceConfigError(f"{origin}: expected a mapping with a 'sources' list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise SourceConfigError(f"{origin}: 'defaults' must be a mapping")
    sources: list[SourceConfig] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["sources"]):
        where = f"{origin}: sources[{index}]"
        if not isinstance(raw, dict):
            raise SourceConfigError(f"{where}: expected a mapping")
        merged = {**defaults, **raw}
        key = str(merged.pop("key", "")).strip()
        if not key or len(key) > 64:
            raise SourceConfigError(f"{where}: 'key' is required (at most 64 characters)")
        if key in seen:
            raise SourceConfigError(f"{where}: duplicate key {key!r}")
        seen.add(key)
        platform = str(merged.pop("platform", ""))
        if platform not in PLATFORMS:
            raise SourceConfigError(f"{where}: platform must be one of {', '.join(PLATFORMS)}")
        accounts = []
        for account in _tuple(merged.pop("accounts", None), f"{where}.accounts"):
            if isinstance(account, dict) and account.get("id"):
                accounts.append({"id": str(account["id"]), "handle": str(account.get("handle", ""))})
            else:
                raise SourceConfigError(f"{where}.accounts: each account needs an 'id'")
        known = {
            f for f in SourceConfig.__dataclass_fields__ if f not in ("key", "platform", "accounts", "extra")
        }
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in merged.items():
            if name in ("queries", "page_ids", "ig_account_ids", "own_usernames"):
                values[name] = tuple(str(v) for v in _tuple(value, f"{where}.{name}"))
            elif name in known:
                values[name] = value
            else:
                extra[name] = value
        for name, value in values.items():
            expected = _SCALAR_TYPES.get(name)
            if expected and (isinstance(value, bool) != (expected == (bool,)) or not isinstance(value, expected)):
                # A quoted "false" is a truthy string and "5m" no number: refuse the file, never guess.
                kinds = "true or false" if expected == (bool,) else " or ".join(t.__name__ for t in expected)
                raise SourceConfigError(f"{where}.{name}: expected {kinds}, got {value!r}")
        source = SourceConfig(key=key, platform=platform, accounts=tuple(accounts), extra=extra, **values)
        if source.credentials_env and not _is_platform_credential(source.credentials_env):
            raise SourceConfigError(
                f"{where}.credentials_env (source {key!r}): {source.credentials_env!r} is not a platform "
                f"credential; name {', '.join(sorted(_DEFAULT_CREDENTIAL.values()))} or another "
                "JARING_*_TOKEN variable (never the LAPOR! token or another secret of Jaring's)"
            )
        if source.schedule_seconds < 30:
            raise SourceConfigError(f"{where}: schedule_seconds must be at least 30")
        if platform == "twitter" and not (source.accounts or source.queries):
            raise SourceConfigError(f"{where}: an X source needs accounts or queries")
        if platform == "facebook" and not source.page_ids:
            raise SourceConfigError(f"{where}: a Facebook source needs page_ids")
        if platform == "instagram" and not source.ig_account_ids:
            raise SourceConfigError(f"{where}: an Instagram source needs ig_account_ids")
        sources.append(source)
    return sources


def load_sources(path: Path | str | None = None) -> list[SourceConfig]:
    """Read and validate the sources file (default ``settings.sources_file``)."""
    path = Path(path or get_settings().sources_file)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceConfigError(f"{path}: {exc}") from exc
    return parse_sources(data, origin=str(path))


def get_source(key: str, path: Path | str | None = None) -> SourceConfig | None:
    """The source named ``key``, read fresh from the file, or None."""
    return next((s for s in load_sources(path) if s.key == key), None)


def find_source_for_object(
    platform: str, object_id: str, path: Path | str | None = None
) -> SourceConfig | None:
    """The source watching a page / IG account id (for webhooks)."""
    for source in load_sources(path):
        if source.platform == platform and (
            object_id in source.page_ids or object_id in source.ig_account_ids
        ):
            return source
    return None


def set_enabled(key: str, enabled: bool, path: Path | str | None = None) -> None:
    """Switch a source on or off in the sources file, keeping the file's comments and layout."""
    path = Path(path or get_settings().sources_file)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("- key:") and stripped.split(":", 1)[1].strip().strip("'\"") == key:
            start = index
            break
    if start is None:
        # Not laid out as "- key: ..." first: rewrite through YAML (comments are lost, data kept).
        data = yaml.safe_load("".join(lines))
        match = [s for s in (data or {}).get("sources") or [] if isinstance(s, dict) and s.get("key") == key]
        if not match:
            raise SourceConfigError(f"{path}: no source {key!r}")
        match[0]["enabled"] = enabled
        _write(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return
    indent = " " * (len(lines[start]) - len(lines[start].lstrip()) + 2)
    end = start + 1
    while end < len(lines) and (
        not lines[end].strip() or lines[end].startswith(indent) or lines[end].lstrip().startswith("#")
    ):
        end += 1
    value = "true" if enabled else "false"
    for index in range(start + 1, end):
        if lines[index].startswith(indent + "enabled:"):
            lines[index] = f"{indent}enabled: {value}\n"
            break
    else:
        lines.insert(start + 1, f"{indent}enabled: {value}\n")
    _write(path, "".join(lines))


def _write(path: Path, text: str) -> None:
    parse_sources(yaml.safe_load(text), origin=str(path))  # never write a file we could not read back
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
