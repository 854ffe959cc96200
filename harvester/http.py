"""The HTTP plumbing shared by the collectors: base-URL rewriting, default timeouts, waiting.

tweepy 4.x builds every URL from a hard-coded ``https://api.twitter.com`` inside
``BaseClient.request`` and facebook-sdk 3.1.0 from the module constant ``FACEBOOK_GRAPH_URL``;
neither takes a base URL, and neither sets a timeout on every call. Both send their requests
through a ``requests.Session`` they let us replace (``Client.session`` and ``GraphAPI(session=)``),
so :class:`RebasingSession` is where the configured base URL (``JARING_TWITTER_API_BASE``,
``JARING_GRAPH_API_BASE``) and our default timeout are applied, without patching either library.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests


class RebasingSession(requests.Session):
    """A ``requests.Session`` that sends requests for ``upstream`` to ``base`` and never waits forever."""

    def __init__(self, *, upstream: str, base: str, timeout: float) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.base = base.rstrip("/")
        self.timeout = timeout

    def rebase(self, url: str) -> str:
        """``url`` with the upstream host replaced by the configured base (other URLs unchanged)."""
        if self.base != self.upstream and (url == self.upstream or url.startswith(self.upstream + "/")):
            return self.base + url[len(self.upstream) :]
        return url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        target = url.decode() if isinstance(url, bytes) else url
        verb = method.decode() if isinstance(method, bytes) else method
        return super().request(verb, self.rebase(target), *args, **kwargs)


@dataclass
class Waiter:
    """How a collector waits: an injectable ``sleep`` and ``clock`` with bounds.

    Tests pass a ``sleep`` that only records, so a 15-minute rate-limit window costs no real time.
    ``max_wait_seconds`` bounds one sleep: a longer rate-limit window ends the run with
    ``RateLimited`` and the source resumes from its checkpoint after the window.
    """

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    max_wait_seconds: float = 60.0
    max_retries: int = 4  # per request, for 5xx, Graph 1/2 and connection errors
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 30.0
    max_rate_limit_waits: int = 3  # per request
    waited_seconds: float = field(default=0.0)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff for retry ``attempt`` (1-based), capped."""
        return float(min(self.backoff_cap_seconds, self.backoff_base_seconds * (2 ** (attempt - 1))))

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (through the injected sleep) and account for it."""
        seconds = max(0.0, seconds)
        self.waited_seconds += seconds
        if seconds:
            self.sleep(seconds)
