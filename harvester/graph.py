"""Facebook Page and Instagram collectors over the Graph API, with facebook-sdk 3.1.0 unpatched.

facebook-sdk's constructor only accepts API versions 2.8-3.1 (long retired by Meta). Its
``request()`` however takes a raw, already-versioned path, so :class:`GraphClient` builds the SDK
without a version, then sets ``version`` to the configured one (``JARING_GRAPH_API_VERSION``) and
builds every path itself. The SDK's requests go through :class:`RebasingSession`, so
``JARING_GRAPH_API_BASE`` points them at a stand-in and every call has a timeout.

Graph errors (JSON ``{"error": {"code": ...}}``):
  4, 17, 32, 613 (and 80001-80014, business-use-case limits) are throttling: back off;
  1, 2 are transient: retry; 190 (expired/invalid token) and 102 (session) stop the source;
  10 and 200-299 (missing permission) mark the source failing.

Time-based checkpoints: each stream remembers the newest ``created_time`` it stored and asks
again from that time minus an overlap, so posts indexed late by the platform are not missed;
re-reads are harmless because the store deduplicates by id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import facebook
import requests

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
    format_graph_time,
    parse_time,
    quarantines_unexpected_shapes,
    utc_from_timestamp,
)

log = logging.getLogger(__name__)

UPSTREAM = "https://graph.facebook.com"
THROTTLE_CODES = {4, 17, 32, 613} | set(range(80001, 80015))
TRANSIENT_CODES = {1, 2}
TOKEN_CODES = {190, 102}
PERMISSION_CODES = {10} | set(range(200, 300))

FB_POST_FIELDS = (
    "id,message,created_time,updated_time,from,permalink_url,status_type,attachments{media_type,url,media}"
)
FB_COMMENT_FIELDS = "id,message,created_time,from,parent{id},permalink_url,attachment"
IG_MEDIA_FIELDS = "id,caption,media_type,media_url,permalink,timestamp,username,comments_count"
IG_COMMENT_FIELDS = (
    "id,text,timestamp,username,from,parent_id,replies{id,text,timestamp,username,from,parent_id}"
)


class GraphClient:
    """facebook-sdk's ``GraphAPI`` on a configurable host and version, with retries and error mapping."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str = UPSTREAM,
        version: str = "v21.0",
        timeout: float = 15.0,
        waiter: Waiter | None = None,
    ) -> None:
        self.session = RebasingSession(upstream=UPSTREAM, base=base_url, timeout=timeout)
        self.api = facebook.GraphAPI(access_token=token, timeout=timeout, session=self.session)
        self.api.version = version if version.startswith("v") else f"v{version}"
        self.waiter = waiter or Waiter()
        self.notices: list[Notice] = []
        self._last_headers: Mapping[str, str] = {}
        self.session.hooks["response"].append(self._remember_headers)

    def _remember_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_headers = response.headers

    def get(self, path: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET ``/{version}/{path}``; raises our error types only."""
        return self.request(f"{self.api.version}/{path.lstrip('/')}", dict(args or {}))

    def request(self, versioned_path: str, args: dict[str, Any]) -> dict[str, Any]:
        """One Graph call with backoff on throttling and retries on transient failures."""
        attempt = 0
        throttled = 0
        while True:
            try:
                result = self.api.request(versioned_path, dict(args))
                if not isinstance(result, dict):
                    raise TransientError(f"Graph returned a non-object body for {versioned_path}")
                return result
            except facebook.GraphAPIError as exc:
                code = _error_code(exc)
                message = _error_message(exc)
                if code in TOKEN_CODES:
                    raise SourceAuthError(
                        f"Graph token rejected (code {code}): {message}", stop=True
                    ) from None
                if code in PERMISSION_CODES:
                    raise SourceAuthError(
                        f"Graph permission missing (code {code}): {message}", stop=False
                    ) from None
                if code in THROTTLE_CODES:
                    throttled += 1
                    wait = self._throttle_wait(throttled)
                    if wait > self.waiter.max_wait_seconds or throttled > self.waiter.max_rate_limit_waits:
                        until = utc_from_timestamp(self.waiter.clock() + wait)
                        raise RateLimited(until, f"Graph throttling (code {code})") from None
                    self.notices.append(
                        Notice("rate_limit_wait", f"Graph code {code}; waiting {wait:.0f}s", wait)
                    )
                    self.waiter.wait(wait)
                    continue
                if code in TRANSIENT_CODES or code is None:
                    attempt = self._retry(attempt, f"Graph code {code}: {message}")
                    continue
                raise HarvestError(f"Graph error (code {code}) on {versioned_path}: {message}") from None
            except (requests.RequestException, KeyError, ValueError) as exc:
                attempt = self._retry(attempt, f"{exc.__class__.__name__} on {versioned_path}")

    def _retry(self, attempt: int, reason: str) -> int:
        attempt += 1
        if attempt > self.waiter.max_retries:
            raise TransientError(f"Graph kept failing: {reason}")
        delay = self.waiter.backoff(attempt)
        self.notices.append(Notice("retry", f"{reason}; retry {attempt} in {delay:.0f}s", delay))
        self.waiter.wait(delay)
        return attempt

    def _throttle_wait(self, throttled: int) -> float:
        """Seconds to wait: Meta's own estimate when it sends one, else exponential from a minute."""
        for header in ("x-business-use-case-usage", "x-page-usage", "x-app-usage"):
            raw = self._last_headers.get(header)
            if not raw:
                continue
            try:
                usage = json.loads(raw)
            except ValueError:
                continue
            minutes = _find_key(usage, "estimated_time_to_regain_access")
            if isinstance(minutes, int | float) and minutes > 0:
                return float(minutes) * 60
        return float(min(3600, 60 * 2 ** (throttled - 1)))

    def paged(self, path: str, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every page of an edge, following ``paging.next`` to the end (empty pages included).

        A ``next`` already followed in this listing ends it with a gap notice: Graph handing back the
        same cursor would otherwise keep the run paging until its time limit, storing nothing new.
        """
        body = self.get(path, args)
        followed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        while True:
            yield body
            paging = body.get("paging") if isinstance(body, dict) else None
            next_url = paging.get("next") if isinstance(paging, dict) else None
            if not next_url:
                return
            parsed = urlparse(next_url)
            query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
            query.pop("access_token", None)
            page_key = (parsed.path, tuple(sorted(query.items())))
            if page_key in followed:
                self.notices.append(
                    Notice(
                        "gap",
                        f"Graph repeated the paging cursor of {path}; stopped there, later pages may be missing",
                    )
                )
                return
            followed.add(page_key)
            body = self.request(parsed.path.lstrip("/"), query)

    def drain(self) -> Iterator[Notice]:
        """Notices gathered since the last call."""
        while self.notices:
            yield self.notices.pop(0)


def _error_code(exc: facebook.GraphAPIError) -> int | None:
    if isinstance(exc.code, int):
        return exc.code
    result = exc.result
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        code = result["error"].get("code")
        return code if isinstance(code, int) else None
    return None


def _error_message(exc: facebook.GraphAPIError) -> str:
    return str(exc.message)[:300]


def _find_key(value: object, key: str) -> object:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        for inner in value.values():
            found = _find_key(inner, key)
            if found is not None:
                return found
    if isinstance(value, list):
        for inner in value:
            found = _find_key(inner, key)
            if found is not None:
                return found
    return None


# -- parsing --------------------------------------------------------------------------------------


@quarantines_unexpected_shapes("facebook", "post")
def parse_fb_post(post: object) -> RawItem | QuarantinedItem:
    """A Page feed/tagged post as a raw item."""
    if not isinstance(post, dict) or not isinstance(post.get("id"), str) or not post["id"]:
        return QuarantinedItem.of("facebook", "post has no id", post)
    created = parse_time(post.get("created_time"))
    if created is None:
        return QuarantinedItem.of("facebook", f"post {post['id']} has no readable created_time", post)
    message = post.get("message", "")
    if not isinstance(message, str):
        return QuarantinedItem.of("facebook", f"post {post['id']} has a non-text message", post)
    author: dict[str, Any] = post["from"] if isinstance(post.get("from"), dict) else {}
    media = []
    attachments = post.get("attachments")
    if isinstance(attachments, dict):
        for a in attachments.get("data") or []:
            if isinstance(a, dict):
                image = (a.get("media") or {}).get("image") if isinstance(a.get("media"), dict) else None
                media.append({"type": a.get("media_type"), "url": (image or {}).get("src") or a.get("url")})
    return RawItem(
        platform="facebook",
        external_id=post["id"],
        kind="fb_post",
        text=message,
        created_at=created,
        raw=post,
        author_id=str(author.get("id", "")),
        author_name=str(author.get("name", "")),
        url=str(post.get("permalink_url") or f"https://www.facebook.com/{post['id']}"),
        media=media,
        thread_external_id=post["id"],
    )


def _checked(
    obj: object, *, platform: str, what: str, time_key: str, text_key: str, text_label: str = "text"
) -> tuple[dict[str, Any], datetime, str] | QuarantinedItem:
    """(item, created time, text) of a well-formed Graph object, or the quarantine record saying why not."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        return QuarantinedItem.of(platform, f"{what} has no id", obj)
    created = parse_time(obj.get(time_key))
    text = obj.get(text_key, "")
    if created is None or not isinstance(text, str):
        return QuarantinedItem.of(platform, f"{what} {obj['id']} lacks {time_key} or {text_label}", obj)
    return obj, created, text


@quarantines_unexpected_shapes("facebook", "comment")
def parse_fb_comment(comment: object, post_id: str | None) -> RawItem | QuarantinedItem:
    """A comment under a Page post as a raw item."""
    checked = _checked(comment, platform="facebook", what="comment", time_key="created_time", text_key="message")
    if isinstance(checked, QuarantinedItem):
        return checked
    comment, created, message = checked
    author: dict[str, Any] = comment["from"] if isinstance(comment.get("from"), dict) else {}
    parent = comment.get("parent") if isinstance(comment.get("parent"), dict) else None
    attachment = comment.get("attachment") if isinstance(comment.get("attachment"), dict) else None
    post_id = post_id or comment["id"].split("_")[0]
    return RawItem(
        platform="facebook",
        external_id=comment["id"],
        kind="fb_comment",
        text=message,
        created_at=created,
        raw=comment,
        author_id=str(author.get("id", "")),
        author_name=str(author.get("name", "")),
        url=str(comment.get("permalink_url") or f"https://www.facebook.com/{comment['id']}"),
        media=[{"type": attachment.get("type"), "url": attachment.get("url")}] if attachment else [],
        parent_external_id=str(parent["id"]) if parent and parent.get("id") else post_id,
        thread_external_id=post_id,
    )


@quarantines_unexpected_shapes("instagram", "media")
def parse_ig_media(media: object) -> RawItem | QuarantinedItem:
    """An Instagram media (tagged or mentioned) as a raw item."""
    checked = _checked(
        media, platform="instagram", what="media", time_key="timestamp", text_key="caption", text_label="caption"
    )
    if isinstance(checked, QuarantinedItem):
        return checked
    media, created, caption = checked
    return RawItem(
        platform="instagram",
        external_id=media["id"],
        kind="ig_media",
        text=caption,
        created_at=created,
        raw=media,
        author_handle=str(media.get("username", "")),
        url=str(media.get("permalink") or ""),
        media=[{"type": media.get("media_type"), "url": media.get("media_url")}]
        if media.get("media_url")
        else [],
        thread_external_id=media["id"],
    )


@quarantines_unexpected_shapes("instagram", "comment")
def parse_ig_comment(comment: object, media_id: str | None) -> RawItem | QuarantinedItem:
    """An Instagram comment as a raw item."""
    checked = _checked(comment, platform="instagram", what="comment", time_key="timestamp", text_key="text")
    if isinstance(checked, QuarantinedItem):
        return checked
    comment, created, text = checked
    author: dict[str, Any] = comment["from"] if isinstance(comment.get("from"), dict) else {}
    media: dict[str, Any] = comment["media"] if isinstance(comment.get("media"), dict) else {}
    media_id = media_id or str(media.get("id") or "") or None
    return RawItem(
        platform="instagram",
        external_id=comment["id"],
        kind="ig_comment",
        text=text,
        created_at=created,
        raw=comment,
        author_id=str(author.get("id", "")),
        author_handle=str(comment.get("username") or author.get("username") or ""),
        url=str(media.get("permalink") or ""),
        parent_external_id=str(comment.get("parent_id") or media_id or "") or None,
        thread_external_id=media_id,
    )


# -- collectors -----------------------------------------------------------------------------------


def _since(checkpoint: str | None, overlap: timedelta, floor: datetime) -> datetime:
    value = parse_time(checkpoint) if checkpoint else None
    return max(value - overlap, floor) if value else floor


@dataclass
class FacebookCollector:
    """A Page's feed (incl. visitor posts), posts it is tagged in, and comments under its posts."""

    client: GraphClient
    page_ids: Sequence[str] = ()
    overlap: timedelta = timedelta(minutes=30)
    first_run_lookback: timedelta = timedelta(days=3)
    comment_window: timedelta = timedelta(days=14)
    include_own: bool = False
    page_size: int = 100

    def collect(self, checkpoints: Mapping[str, str]) -> Iterator[Event]:
        """Feed, tagged and comments streams for each page, each ending with its checkpoint."""
        now = utc_from_timestamp(self.client.waiter.clock())
        for page_id in self.page_ids:
            yield from self._page(page_id, checkpoints, now)

    def _page(self, page_id: str, checkpoints: Mapping[str, str], now: datetime) -> Iterator[Event]:
        floor = now - self.first_run_lookback
        feed_cursor, tagged_cursor = f"feed:{page_id}", f"tagged:{page_id}"
        feed_since = _since(checkpoints.get(feed_cursor), self.overlap, floor)
        scan_since = min(feed_since, now - self.comment_window)
        to_scan: list[tuple[str, datetime, datetime]] = []  # (post id, last activity, comments since)
        newest: datetime | None = None
        for body in self.client.paged(
            f"{page_id}/feed",
            {"fields": FB_POST_FIELDS, "since": int(scan_since.timestamp()), "limit": self.page_size},
        ):
            yield from self.client.drain()
            items: list[RawItem | QuarantinedItem] = []
            for post in _data(body, "facebook", items):
                parsed = parse_fb_post(post)
                if isinstance(parsed, RawItem) and parsed.created_at:
                    scan = self._comment_scan(parsed, post, checkpoints, floor, now)
                    if scan is not None:
                        to_scan.append(scan)
                    if parsed.created_at < feed_since:
                        continue  # only listed to find comments
                    newest = max(newest, parsed.created_at) if newest else parsed.created_at
                    if not self.include_own and parsed.author_id == page_id:
                        continue
                items.append(parsed)
            yield Page(stream=feed_cursor, items=items)
        yield from self.client.drain()
        if newest:
            yield CheckpointProposal(feed_cursor, format_graph_time(newest))

        yield from self._edge_by_time(
            f"{page_id}/tagged", tagged_cursor, checkpoints, floor, FB_POST_FIELDS, parse_fb_post
        )

        # One checkpoint per post: a run cut short keeps what it finished, and the next run only
        # reads comments of posts active since (Graph's updated_time counts the last comment).
        for post_id, activity, since in to_scan:
            cursor = f"comments:{post_id}"
            for body in self.client.paged(
                f"{post_id}/comments",
                {
                    "fields": FB_COMMENT_FIELDS,
                    "filter": "stream",
                    "order": "reverse_chronological",
                    "since": int(since.timestamp()),
                    "limit": self.page_size,
                },
            ):
                yield from self.client.drain()
                items = []
                for comment in _data(body, "facebook", items):
                    parsed = parse_fb_comment(comment, post_id)
                    if isinstance(parsed, RawItem) and parsed.created_at:
                        if parsed.created_at < since:
                            continue
                        activity = max(activity, parsed.created_at)
                        if not self.include_own and parsed.author_id == page_id:
                            continue
                    items.append(parsed)
                yield Page(stream=cursor, items=items)
            yield from self.client.drain()
            yield CheckpointProposal(cursor, format_graph_time(activity))

    def _comment_scan(
        self,
        parsed: RawItem,
        post: dict[str, Any],
        checkpoints: Mapping[str, str],
        floor: datetime,
        now: datetime,
    ) -> tuple[str, datetime, datetime] | None:
        """(post id, last activity, comments since) if the post may have comments we have not read."""
        assert parsed.created_at is not None
        activity = parse_time(post.get("updated_time")) or parsed.created_at
        scanned = parse_time(checkpoints.get(f"comments:{parsed.external_id}"))
        if scanned is not None and activity <= scanned and now - scanned > self.overlap:
            return None
        since = scanned - self.overlap if scanned else max(floor, parsed.created_at - self.overlap)
        return parsed.external_id, activity, since

    def _edge_by_time(
        self, path: str, cursor: str, checkpoints: Mapping[str, str], floor: datetime, fields: str, parse: Any
    ) -> Iterator[Event]:
        since = _since(checkpoints.get(cursor), self.overlap, floor)
        newest: datetime | None = None
        for body in self.client.paged(
            path, {"fields": fields, "since": int(since.timestamp()), "limit": self.page_size}
        ):
            yield from self.client.drain()
            items: list[RawItem | QuarantinedItem] = []
            for row in _data(body, "facebook", items):
                parsed = parse(row)
                if isinstance(parsed, RawItem) and parsed.created_at:
                    if parsed.created_at < since:
                        continue
                    newest = max(newest, parsed.created_at) if newest else parsed.created_at
                items.append(parsed)
            yield Page(stream=cursor, items=items)
        yield from self.client.drain()
        if newest:
            yield CheckpointProposal(cursor, format_graph_time(newest))

    def fetch_post(self, object_id: str) -> RawItem | QuarantinedItem:
        """One post by id (Page ``feed`` webhooks name it; we fetch the canonical object)."""
        return parse_fb_post(self.client.get(object_id, {"fields": FB_POST_FIELDS}))

    def fetch_comment(self, object_id: str) -> RawItem | QuarantinedItem:
        """One comment by id."""
        return parse_fb_comment(self.client.get(object_id, {"fields": FB_COMMENT_FIELDS}), None)


@dataclass
class InstagramCollector:
    """Media an IG business account is tagged in, and comments on its own media."""

    client: GraphClient
    account_ids: Sequence[str] = ()
    overlap: timedelta = timedelta(minutes=30)
    first_run_lookback: timedelta = timedelta(days=3)
    comment_window: timedelta = timedelta(days=14)
    page_size: int = 50
    own_usernames: Sequence[str] = field(default_factory=tuple)

    def collect(self, checkpoints: Mapping[str, str]) -> Iterator[Event]:
        """Tags and comments streams for each account."""
        now = utc_from_timestamp(self.client.waiter.clock())
        for account in self.account_ids:
            yield from self._account(account, checkpoints, now)

    def _account(self, account: str, checkpoints: Mapping[str, str], now: datetime) -> Iterator[Event]:
        floor = now - self.first_run_lookback
        tags_cursor, comments_cursor = f"tags:{account}", f"comments:{account}"
        # /tags has no `since`: it is newest first, so stop paging once a page is entirely older.
        since = _since(checkpoints.get(tags_cursor), self.overlap, floor)
        newest: datetime | None = None
        for body in self.client.paged(
            f"{account}/tags", {"fields": IG_MEDIA_FIELDS, "limit": self.page_size}
        ):
            yield from self.client.drain()
            items: list[RawItem | QuarantinedItem] = []
            older = 0
            listed = _data(body, "instagram", items)
            for row in listed:
                parsed = parse_ig_media(row)
                if isinstance(parsed, RawItem) and parsed.created_at:
                    if parsed.created_at < since:
                        older += 1
                        continue
                    newest = max(newest, parsed.created_at) if newest else parsed.created_at
                items.append(parsed)
            yield Page(stream=tags_cursor, items=items)
            if listed and older == len(listed):
                break
        yield from self.client.drain()
        if newest:
            yield CheckpointProposal(tags_cursor, format_graph_time(newest))

        comments_since = _since(checkpoints.get(comments_cursor), self.overlap, floor)
        window_start = now - self.comment_window
        own_media: list[str] = []
        for body in self.client.paged(
            f"{account}/media", {"fields": "id,timestamp", "limit": self.page_size}
        ):
            yield from self.client.drain()
            rows: list[Any] = body["data"] if isinstance(body.get("data"), list) else []
            stamps = [(r.get("id"), parse_time(r.get("timestamp"))) for r in rows if isinstance(r, dict)]
            own_media += [str(i) for i, t in stamps if i and t and t >= window_start]
            if stamps and all(t is not None and t < window_start for _, t in stamps):
                break
        newest = None
        for media_id in own_media:
            for body in self.client.paged(
                f"{media_id}/comments", {"fields": IG_COMMENT_FIELDS, "limit": self.page_size}
            ):
                yield from self.client.drain()
                items = []
                for row in _data(body, "instagram", items):
                    replies = row.get("replies") if isinstance(row, dict) else None
                    nested = replies.get("data") if isinstance(replies, dict) else None
                    if nested is not None and not isinstance(nested, list):
                        reason = f"comment {row.get('id')} has a malformed replies list"
                        items.append(QuarantinedItem.of("instagram", reason, replies))
                        nested = None
                    for comment in [row, *(nested or [])]:
                        parsed = parse_ig_comment(comment, media_id)
                        if isinstance(parsed, RawItem) and parsed.created_at:
                            if parsed.created_at < comments_since:
                                continue
                            newest = max(newest, parsed.created_at) if newest else parsed.created_at
                            if parsed.author_handle and parsed.author_handle in self.own_usernames:
                                continue
                        items.append(parsed)
                yield Page(stream=comments_cursor, items=items)
        yield from self.client.drain()
        if newest:
            yield CheckpointProposal(comments_cursor, format_graph_time(newest))

    def fetch_mentioned_comment(self, account: str, comment_id: str) -> RawItem | QuarantinedItem:
        """The comment an @mention webhook names (``mentioned_comment`` field expansion).

        The edge returns only id, like_count, media, text and timestamp: asking for the author
        (``username``, ``from``) is Graph error #100, and the notification does not name them either.
        """
        body = self.client.get(
            account,
            {
                "fields": f"mentioned_comment.comment_id({comment_id}){{id,text,timestamp,media{{id,permalink}}}}"
            },
        )
        return parse_ig_comment(body.get("mentioned_comment"), None)

    def fetch_mentioned_media(self, account: str, media_id: str) -> RawItem | QuarantinedItem:
        """The media (caption) an @mention webhook names (``mentioned_media`` field expansion).

        Only the fields Meta lists for this edge: it has no ``permalink`` (asking is error #100), so such
        a post has no link; media of another account cannot be read directly to get one.
        """
        body = self.client.get(
            account,
            {"fields": f"mentioned_media.media_id({media_id}){{id,caption,media_type,media_url,timestamp,username}}"},
        )
        return parse_ig_media(body.get("mentioned_media"))


def _data(body: dict[str, Any], platform: str, quarantine: list[RawItem | QuarantinedItem]) -> list[Any]:
    data = body.get("data")
    if data is None and "paging" in body:
        return []
    if not isinstance(data, list):
        quarantine.append(QuarantinedItem.of(platform, "page body has no data list", body))
        return []
    return data
