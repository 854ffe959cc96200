"""What collectors hand to the pipeline: raw items, quarantined payloads, checkpoints and notices.

Collectors know nothing of the database. They yield these plain objects; ``pipelines.harvest``
stores the items, then commits the checkpoints that follow them, so a checkpoint never runs ahead
of the posts it covers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec


@dataclass
class RawItem:
    """One post, tweet, comment or media as received, with the fields Jaring normalises."""

    platform: str  # twitter | facebook | instagram
    external_id: str
    kind: str  # tweet, fb_post, fb_comment, ig_media, ig_comment
    text: str
    created_at: datetime | None
    raw: dict[str, Any]
    author_id: str = ""
    author_handle: str = ""
    author_name: str = ""
    lang: str = ""
    url: str = ""
    media: list[dict[str, Any]] = field(default_factory=list)
    parent_external_id: str | None = None
    thread_external_id: str | None = None
    referenced: list[dict[str, str]] = field(default_factory=list)  # [{"type": "retweeted", "id": "..."}]
    original_external_id: str | None = None  # the retweeted/quoted original, if any


@dataclass
class QuarantinedItem:
    """A payload that could not be parsed: kept whole with the reason, never dropped."""

    platform: str
    reason: str
    raw_body: str

    @classmethod
    def of(cls, platform: str, reason: str, payload: object) -> QuarantinedItem:
        """Quarantine ``payload`` (serialised as JSON when possible)."""
        try:
            body = (
                payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
            )
        except (TypeError, ValueError):
            body = repr(payload)
        return cls(platform=platform, reason=reason, raw_body=body)


P = ParamSpec("P")
# What reading a payload of an unexpected shape raises (a list where an object was expected, ...).
UNEXPECTED_SHAPE = (TypeError, AttributeError, ValueError, KeyError, IndexError)


def quarantines_unexpected_shapes(
    platform: str, what: str
) -> Callable[[Callable[P, RawItem | QuarantinedItem]], Callable[P, RawItem | QuarantinedItem]]:
    """Make a parser quarantine (its first argument, whole) a payload it cannot read, instead of raising.

    A parser checks the fields it knows can be missing; this catches the shapes nobody foresaw, so
    one odd item never ends a harvest run (nor, repeated on every run, stalls its source for good).
    """

    def decorate(parse: Callable[P, RawItem | QuarantinedItem]) -> Callable[P, RawItem | QuarantinedItem]:
        @functools.wraps(parse)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> RawItem | QuarantinedItem:
            try:
                return parse(*args, **kwargs)
            except UNEXPECTED_SHAPE as exc:
                payload = args[0] if args else None
                ident = payload.get("id") if isinstance(payload, dict) else None
                reason = f"{what} {ident} has an unexpected shape ({exc.__class__.__name__}: {exc})"
                return QuarantinedItem.of(platform, reason[:500], payload)

        return guarded

    return decorate


@dataclass
class Page:
    """One fetched page of a stream: store these items (in order) before going on."""

    stream: str  # e.g. "mentions:1234", "feed:page-id"
    items: list[RawItem | QuarantinedItem]


@dataclass
class CheckpointProposal:
    """Where ``cursor`` may be moved to once everything yielded before it is stored."""

    cursor: str
    value: str


@dataclass
class Notice:
    """Something the run should record: a rate-limit wait, a retry, a possible gap."""

    kind: str  # rate_limit_wait | retry | gap | warning
    message: str
    seconds: float = 0.0


Event = Page | CheckpointProposal | Notice


class HarvestError(Exception):
    """Base of the errors collectors raise; no vendor exception leaks past a collector."""


class SourceAuthError(HarvestError):
    """The credentials are expired, revoked or lack permission: stop the source, tell an admin."""

    def __init__(self, reason: str, *, stop: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stop = stop


class RateLimited(HarvestError):
    """The platform asked us to wait longer than a run may sleep; resume after ``until``."""

    def __init__(self, until: datetime, reason: str = "rate limited") -> None:
        super().__init__(f"{reason}; retry after {until.isoformat()}")
        self.until = until


class TransientError(HarvestError):
    """The platform kept failing after the retries a run allows; try again on the next run."""


def utc_from_timestamp(seconds: float) -> datetime:
    """A timezone-aware UTC datetime from Unix seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def parse_time(value: object) -> datetime | None:
    """Parse X (``2024-05-01T10:00:00.000Z``) and Graph (``2024-05-01T10:00:00+0000``) times."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit() and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_graph_time(value: datetime) -> str:
    """Graph's time format, e.g. ``2024-05-01T10:00:00+0000``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
