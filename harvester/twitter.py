"""X (Twitter) collector: mentions of each configured account and recent search per query (API v2).

tweepy's ``Client`` runs unpatched; its requests go through :class:`RebasingSession`, so
``JARING_TWITTER_API_BASE`` points all traffic at a stand-in. We ask tweepy for plain dicts
(``return_type=dict``) so each tweet's payload is kept exactly as received.

Incremental polling: ``since_id`` per stream. The first page's ``meta.newest_id`` is the next
checkpoint, proposed only after the last page was yielded, so a run that dies mid-way re-reads
the same window next time (the store deduplicates) instead of skipping its unread pages.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy

from harvester.http import RebasingSession, Waiter
from harvester.types import (
    CheckpointProposal,
    Event,
    HarvestError,
    Notice,
    Page,
    QuarantinedItem,
    RateLimited,
    RawItem,
    SourceAuthError,
    TransientError,
    parse_time,
    quarantines_unexpected_shapes,
    utc_from_timestamp,
)

log = logging.getLogger(__name__)

UPSTREAM = "https://api.twitter.com"
MENTIONS_REACHABLE = 800  # X serves only the 800 most recent mentions
SEARCH_WINDOW = timedelta(days=7)  # recent search covers the last seven days
TWITTER_EPOCH_MS = 1288834974657

EXPANSIONS = ["author_id", "referenced_tweets.id", "attachments.media_keys", "geo.place_id"]
TWEET_FIELDS = [
    "id",
    "text",
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "lang",
    "referenced_tweets",
    "attachments",
    "geo",
    "entities",
    "public_metrics",
    "edit_history_tweet_ids",
]
USER_FIELDS = ["id", "name", "username", "location", "verified"]
MEDIA_FIELDS = ["media_key", "type", "url", "preview_image_url", "alt_text", "width", "height"]
PLACE_FIELDS = ["id", "full_name", "name", "country_code", "geo", "place_type"]


def snowflake_time(tweet_id: str) -> datetime | None:
    """When a tweet id was minted (X ids are Snowflakes: milliseconds since 2010-11-04 << 22)."""
    try:
        return utc_from_timestamp(((int(tweet_id) >> 22) + TWITTER_EPOCH_MS) / 1000)
    except (TypeError, ValueError):
        return None


def search_cursor(query: str) -> str:
    """The checkpoint cursor of a search query (hashed: queries can be long)."""
    return "search:" + hashlib.sha1(query.encode("utf-8")).hexdigest()[:16]  # noqa: S324 - a name, not security


@dataclass
class TwitterAccount:
    """An account whose mentions we poll: numeric user id and handle (for logs and links)."""

    id: str
    handle: str = ""


@dataclass
class TwitterCollector:
    """Polls mentions and recent search; yields pages, checkpoint proposals and notices."""

    bearer_token: str = field(repr=False)  # a secret: never in a repr, log or traceback
    base_url: str = UPSTREAM
    timeout: float = 15.0
    accounts: Sequence[TwitterAccount] = ()
    queries: Sequence[str] = ()
    page_size: int = 100
    waiter: Waiter = field(default_factory=Waiter)
    _notices: list[Notice] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.client = tweepy.Client(
            bearer_token=self.bearer_token, return_type=dict, wait_on_rate_limit=False
        )
        self.client.session = RebasingSession(upstream=UPSTREAM, base=self.base_url, timeout=self.timeout)

    # -- streams ---------------------------------------------------------------------------------

    def collect(self, checkpoints: Mapping[str, str]) -> Iterator[Event]:
        """Every configured stream, newest first within each, each ending with its checkpoint.

        A stream X answers with errors only (an unknown or suspended user id) does not stop the
        others; once they are read, the source fails with X's reasons, so an admin sees them.
        """
        refused: list[str] = []
        for account in self.accounts:
            cursor = f"mentions:{account.id}"
            yield from self._unless_refused(
                refused,
                self._stream(
                    cursor,
                    checkpoints.get(cursor),
                    lambda _a=account, **p: self.client.get_users_mentions(_a.id, **p),
                    token_param="pagination_token",  # noqa: S106 - a parameter name
                    reachable=MENTIONS_REACHABLE,
                    label=f"mentions of @{account.handle or account.id}",
                ),
            )
        for query in self.queries:
            cursor = search_cursor(query)
            yield from self._unless_refused(
                refused,
                self._stream(
                    cursor,
                    checkpoints.get(cursor),
                    lambda _q=query, **p: self.client.search_recent_tweets(_q, **p),
                    token_param="next_token",  # noqa: S106 - a parameter name
                    reachable=None,
                    label=f"search {query!r}",
                ),
            )
        if refused:
            # Failing, not stopped (like a missing credential): the fix is in the sources file.
            raise SourceAuthError("; ".join(refused)[:1000], stop=False)

    @staticmethod
    def _unless_refused(refused: list[str], stream: Iterator[Event]) -> Iterator[Event]:
        try:
            yield from stream
        except StreamRefused as exc:
            refused.append(str(exc))

    def _stream(
        self,
        cursor: str,
        since_id: str | None,
        call: Any,
        *,
        token_param: str,
        reachable: int | None,
        label: str,
    ) -> Iterator[Event]:
        params: dict[str, Any] = {
            "max_results": max(10, min(100, self.page_size)),
            "expansions": EXPANSIONS,
            "tweet_fields": TWEET_FIELDS,
            "user_fields": USER_FIELDS,
            "media_fields": MEDIA_FIELDS,
            "place_fields": PLACE_FIELDS,
        }
        if since_id:
            minted = snowflake_time(since_id)
            now = utc_from_timestamp(self.waiter.clock())
            if (
                reachable is None
                and minted is not None
                and now - minted > SEARCH_WINDOW - timedelta(minutes=5)
            ):
                # Recent search refuses since_id older than its window: read the whole window instead.
                self._notices.append(
                    Notice(
                        "gap", f"{label}: last checkpoint is older than 7 days; posts in between may be lost"
                    )
                )
                since_id = None
            else:
                params["since_id"] = since_id
        yield from self._drain_notices()

        newest_id: str | None = None
        seen = 0
        oldest_seen: str | None = None
        token: str | None = None
        followed: set[str] = set()
        while True:
            page_params = dict(params)
            if token:
                page_params[token_param] = token
            body = self._call(call, page_params)
            yield from self._drain_notices()
            errors = body.get("errors")
            if "data" not in body and isinstance(errors, list) and errors:
                # X's partial-error format with nothing served: a 200 that is no empty success.
                raise StreamRefused(f"{label}: X answered with errors only: {_describe_errors(errors)}")
            meta = body.get("meta") or {}
            if newest_id is None:
                newest_id = meta.get("newest_id") or since_id
            items = list(self._parse_page(body))
            seen += sum(
                1 for i in items if isinstance(i, RawItem) and i.kind == "tweet" and not i.raw.get("_ref")
            )
            oldest_seen = meta.get("oldest_id") or oldest_seen
            yield Page(stream=cursor, items=items)
            token = meta.get("next_token")
            if not token:
                break
            if token in followed:
                # Following it again would loop until the task's time limit, storing nothing new.
                yield Notice(
                    "gap",
                    f"{label}: X repeated a pagination token; stopped there, older posts may be missing",
                )
                break
            followed.add(token)

        if reachable is not None and since_id and seen >= reachable:
            yield Notice(
                "gap",
                f"{label}: {seen} posts since the last run reached the {reachable}-post limit; "
                "older ones may be unreachable",
            )
        elif reachable is not None and not since_id and seen >= reachable:
            yield Notice("gap", f"{label}: first run reached the {reachable}-post limit")
        if newest_id and newest_id != since_id:
            yield CheckpointProposal(cursor=cursor, value=str(newest_id))

    def _drain_notices(self) -> Iterator[Notice]:
        while self._notices:
            yield self._notices.pop(0)

    # -- one request with waiting and retrying --------------------------------------------------------

    def _call(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        rate_limit_waits = 0
        while True:
            try:
                body = call(**params)
                if not isinstance(body, dict):
                    raise TransientError(f"X returned a non-object body: {str(body)[:200]}")
                return body
            except tweepy.TooManyRequests as exc:
                now = self.waiter.clock()
                reset = float(exc.reset_time) if exc.reset_time else now + 60
                wait = max(1.0, reset - now + 1)
                rate_limit_waits += 1
                if wait > self.waiter.max_wait_seconds or rate_limit_waits > self.waiter.max_rate_limit_waits:
                    raise RateLimited(utc_from_timestamp(reset), "X rate limit (429)") from None
                self._notices.append(Notice("rate_limit_wait", f"X 429; waiting {wait:.0f}s for reset", wait))
                self.waiter.wait(wait)
            except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
                status = exc.response.status_code if exc.response is not None else "?"
                detail = "; ".join(exc.api_messages) or str(exc)
                # Failing, not stopped: a 403 can be a plan or permission change an admin fixes on X's
                # side, so the source keeps trying on its schedule (and says why) instead of waiting.
                raise SourceAuthError(
                    f"X refused the credentials (HTTP {status}): {detail[:300]}", stop=False
                ) from None
            except (tweepy.TwitterServerError, requests.RequestException, ValueError) as exc:
                attempt += 1
                reason = _describe(exc)
                if attempt > self.waiter.max_retries:
                    raise TransientError(f"X kept failing: {reason}") from None
                delay = self.waiter.backoff(attempt)
                self._notices.append(Notice("retry", f"X {reason}; retry {attempt} in {delay:.0f}s", delay))
                self.waiter.wait(delay)
            except tweepy.HTTPException as exc:
                status = exc.response.status_code if exc.response is not None else "?"
                detail = "; ".join(exc.api_messages)[:300]
                raise HarvestError(f"X rejected the request (HTTP {status}): {detail}") from None

    # -- parsing ------------------------------------------------------------------------------------

    def _parse_page(self, body: dict[str, Any]) -> Iterator[RawItem | QuarantinedItem]:
        data = body.get("data") or []
        includes = body.get("includes") or {}
        if not isinstance(data, list) or not isinstance(includes, dict):
            yield QuarantinedItem.of("twitter", "page body has no list of tweets", body)
            return
        users = _index(includes.get("users"), "id")
        media = _index(includes.get("media"), "media_key")
        places = _index(includes.get("places"), "id")
        included_tweets = _index(includes.get("tweets"), "id")
        for tweet in data:
            # Originals of retweets/quotes come first, so the store can link them.
            refs = tweet.get("referenced_tweets") if isinstance(tweet, dict) else None
            for ref in refs if isinstance(refs, list) else []:
                if isinstance(ref, dict) and ref.get("type") in ("retweeted", "quoted"):
                    original = included_tweets.get(str(ref.get("id")))
                    if original is not None:
                        yield parse_tweet(original, users, media, places, reference=True)
            yield parse_tweet(tweet, users, media, places)


class StreamRefused(HarvestError):
    """X served nothing for one stream and said why (``errors`` without ``data``)."""


def _describe_errors(errors: list[Any]) -> str:
    described = []
    for error in errors[:3]:
        if isinstance(error, dict):
            text = f"{error.get('title') or 'Error'}: {error.get('detail') or error.get('message') or ''}"
            described.append(f"{text} ({error['type']})" if error.get("type") else text)
        else:
            described.append(str(error))
    return "; ".join(described)[:300]


def _index(rows: object, key: str) -> dict[str, dict[str, Any]]:
    if not isinstance(rows, list):
        return {}
    return {str(r[key]): r for r in rows if isinstance(r, dict) and key in r}


def _describe(exc: Exception) -> str:
    if isinstance(exc, tweepy.HTTPException) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    return exc.__class__.__name__


@quarantines_unexpected_shapes("twitter", "tweet")
def parse_tweet(
    tweet: object,
    users: Mapping[str, dict[str, Any]],
    media: Mapping[str, dict[str, Any]],
    places: Mapping[str, dict[str, Any]],
    *,
    reference: bool = False,
) -> RawItem | QuarantinedItem:
    """A v2 tweet object (plus its expansions) as a raw item, or a quarantine record saying why not."""
    if not isinstance(tweet, dict):
        return QuarantinedItem.of("twitter", "tweet is not a JSON object", tweet)
    tweet_id = tweet.get("id")
    if not isinstance(tweet_id, str) or not tweet_id.isdigit():
        return QuarantinedItem.of("twitter", "tweet has no valid id", tweet)
    text = tweet.get("text")
    if not isinstance(text, str):
        return QuarantinedItem.of("twitter", f"tweet {tweet_id} has no text", tweet)
    created = parse_time(tweet.get("created_at"))
    if tweet.get("created_at") is not None and created is None:
        return QuarantinedItem.of("twitter", f"tweet {tweet_id} has an unreadable created_at", tweet)
    author = users.get(str(tweet.get("author_id")), {})
    attachments = tweet.get("attachments") or {}
    media_items = (
        [media[k] for k in attachments.get("media_keys") or [] if k in media]
        if isinstance(attachments, dict)
        else []
    )
    geo = tweet.get("geo") or {}
    place = places.get(str(geo.get("place_id"))) if isinstance(geo, dict) else None
    refs = [
        {"type": str(r.get("type")), "id": str(r.get("id"))}
        for r in tweet.get("referenced_tweets") or []
        if isinstance(r, dict)
    ]
    original = next((r["id"] for r in refs if r["type"] in ("retweeted", "quoted")), None)
    parent = next((r["id"] for r in refs if r["type"] == "replied_to"), None)
    raw: dict[str, Any] = {"tweet": tweet, "author": author or None, "media": media_items, "place": place}
    if reference:
        raw["_ref"] = True
    handle = str(author.get("username", ""))
    return RawItem(
        platform="twitter",
        external_id=tweet_id,
        kind="tweet",
        text=text,
        created_at=created or snowflake_time(tweet_id) or datetime.now(UTC),
        raw=raw,
        author_id=str(tweet.get("author_id") or ""),
        author_handle=handle,
        author_name=str(author.get("name", "")),
        lang=str(tweet.get("lang") or ""),
        url=f"https://x.com/{handle or 'i'}/status/{tweet_id}",
        media=[
            {"type": m.get("type"), "url": m.get("url") or m.get("preview_image_url")} for m in media_items
        ],
        parent_external_id=parent,
        thread_external_id=str(tweet.get("conversation_id")) if tweet.get("conversation_id") else None,
        referenced=refs,
        original_external_id=original,
    )
