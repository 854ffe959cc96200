"""One settings class for the whole system, read from the environment (prefix ``JARING_``).

Every variable is documented in ``.env.example``. Secrets are ``SecretStr`` so they never show up
in reprs, logs or tracebacks; they are read from the environment only, never from code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "dev-insecure-secret-change-me"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    """Runtime configuration; fails fast on values that cannot work."""

    model_config = SettingsConfigDict(env_prefix="JARING_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(default=REPO_ROOT / "data", description="Where SQLite files and beat state live.")
    database_url: str = ""
    broker_url: str = ""
    result_backend: str = ""
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)

    models_dir: Path = REPO_ROOT / "models"
    training_data_dir: Path = REPO_ROOT.parent / "shared" / "data"
    sources_file: Path = REPO_ROOT / "config" / "sources.yaml"
    city_file: Path = REPO_ROOT / "classifier" / "cities" / "kota_kupang.yaml"
    forward_policy_file: Path = REPO_ROOT / "config" / "forward_policy.yaml"

    twitter_api_base: str = "https://api.twitter.com"
    twitter_bearer_token: SecretStr | None = None
    twitter_reply_token: SecretStr | None = None  # OAuth 2.0 user token: replies need user context
    graph_api_base: str = "https://graph.facebook.com"
    graph_api_version: str = "v21.0"
    facebook_page_token: SecretStr | None = None
    instagram_token: SecretStr | None = None
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None

    lapor_sender: Literal["api", "manual"] = "api"
    lapor_api_base: str = "https://api.lapor.go.id"
    lapor_api_token: SecretStr | None = None
    lapor_public_url: str = "https://www.lapor.go.id/pengaduan"

    # How often beat asks the harvest dispatcher which sources are due (each has its own schedule_seconds).
    harvest_dispatch_seconds: float = 15.0
    classify_sweep_seconds: float = 60.0
    # A post still unclassified this long after its classify message was published is queued again.
    classify_requeue_seconds: float = 600.0
    http_timeout_seconds: float = 15.0
    max_post_chars: int = 20_000
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # Addresses (comma-separated IPs or CIDR ranges, or "*") of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed. Behind a proxy in another container or host, list its address: else
    # every client looks like the proxy (one shared login lock-out, the proxy's address in the audit log).
    forwarded_allow_ips: str = "127.0.0.1"

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'jaring.sqlite'}"
        if not self.broker_url:
            # Embedded default: kombu's SQLAlchemy transport, so a real worker and beat run without a server.
            self.broker_url = f"sqla+sqlite:///{self.data_dir / 'broker.sqlite'}"
        return self

    def require_production_secrets(self) -> None:
        """Refuse to serve in production with the development secret key."""
        if self.environment == "production" and self.secret_key.get_secret_value() in (
            "",
            DEFAULT_SECRET_KEY,
        ):
            raise ValueError(
                "JARING_SECRET_KEY must be set to a real secret when JARING_ENVIRONMENT=production"
            )
        if self.environment == "production" and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("JARING_SECRET_KEY must be at least 32 characters in production")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()
