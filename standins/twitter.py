"""A stand-in for the X API v2 (mentions timeline and recent search), faithful to the wire format.

JSON shapes as X sends them: ``data``, ``includes`` (users, tweets, media, places) for the requested
``expansions``, ``meta`` with ``newest_id``/``oldest_id``/``result_count``/``next_token``; problem
bodies for errors; ``x-rate-limit-limit/remaining/reset`` headers on every answer. State lives in
memory (:class:`TwitterState`), tests load it and turn the fault knobs (:class:`standins.faults.Faults`).
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from standins.faults import Faults

TWITTER_EPOCH_MS = 1288834974657
MENTIONS_REACHABLE = 800
SEARCH_WINDOW = timedelta(days=7)
DEFAULT_FIELDS = {"id", "text", "edit_history_tweet_ids"}


def snowflake(at: datetime, sequence: int) -> int:
    """An X-style id minted at ``at`` (milliseconds since the X epoch, shifted left 22 bits)."""
    ms = int(at.timestamp() * 1000) - TWITTER_EPOCH_MS
    return (ms << 22) | (sequence & 0x3FFFFF)


@dataclass
class StoredTweet:
    sort_id: int
    payload: Any  # the tweet object as served (may be deliberately malformed)
    text: str
    created_at: datetime
    mentions: set[str]


@dataclass
class TwitterState:
    """In-memory X: users, tweets, media, places; plus fault knobs and a request log."""

    bearer_tokens: set[str] | None = None  # None: any token accepted
    expired_tokens: set[str] = field(default_factory=set)
    faults: Faults = field(default_factory=Faults)
    rate_limit_window_seconds: int = 900
    repeat_next_token: int = 0  # this many pages asked for with a token answer that same token as next
    clock: Any = time.time
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    tweets: list[StoredTweet] = field(default_factory=list)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    places: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def add_user(self, username: str, name: str = "", user_id: str | None = None) -> str:
        """Create a user; returns its id."""
        uid = user_id or str(1_000_000 + len(self.users) + 1)
        self.users[uid] = {"id": uid, "name": name or username, "username": username, "verified": False}
        return uid

    def user_by_handle(self, username: str) -> dict[str, Any]:
        for user in self.users.values():
            if user["username"].lower() == username.lower():
                return user
        return self.users[self.add_user(username)]

    def add_tweet(
        self,
        text: str,
        *,
        author: str = "warga_kupang",
        created_at: datetime | None = None,
        referenced: list[dict[str, str]] | None = None,
        media: list[dict[str, Any]] | None = None,
        place: dict[str, Any] | None = None,
        lang: str = "in",
    ) -> str:
        """Post a tweet as ``author`` (a handle); returns its id. Mentions come from ``@handle`` in the text."""
        with self._lock:
            created = created_at or self.now()
            tweet_id = str(snowflake(created, next(self._seq)))
            user = self.user_by_handle(author)
            tweet: dict[str, Any] = {
                "id": tweet_id,
                "text": text,
                "edit_history_tweet_ids": [tweet_id],
                "author_id": user["id"],
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z",
                "conversation_id": tweet_id,
                "lang": lang,
                "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0},
            }
            if referenced:
                tweet["referenced_tweets"] = referenced
                for ref in referenced:
                    if ref["type"] == "replied_to":
                        parent = self.find(ref["id"])
                        if parent is not None:
                            tweet["conversation_id"] = parent.payload.get("conversation_id", ref["id"])
            if media:
                keys = []
                for m in media:
                    key = f"3_{len(self.media) + 1}"
                    self.media[key] = {"media_key": key, **m}
                    keys.append(key)
                tweet["attachments"] = {"media_keys": keys}
            if place:
                self.places[place["id"]] = place
                tweet["geo"] = {"place_id": place["id"]}
            self.tweets.append(StoredTweet(int(tweet_id), tweet, text, created, _mentions(text)))
            return tweet_id

    def add_malformed(self, payload: Any, *, mentions: str = "", created_at: datetime | None = None) -> int:
        """Serve ``payload`` as-is among the tweets (e.g. without ``text``); returns its sort id."""
        with self._lock:
            created = created_at or self.now()
            sort_id = snowflake(created, next(self._seq))
            text = mentions and f"@{mentions}"
            self.tweets.append(StoredTweet(sort_id, payload, text, created, _mentions(text)))
            return sort_id

    def find(self, tweet_id: str) -> StoredTweet | None:
        for t in self.tweets:
            if isinstance(t.payload, dict) and t.payload.get("id") == tweet_id:
                return t
        return None

    def load_samples(self, samples: list[Any], *, city_account: dict[str, str] | None = None) -> int:
        """Load sample posts (``standins.samples.SamplePost`` or dicts); returns how many were X posts.

        ``city_account`` ({"id", "username"}) creates the account whose mentions the demo polls.
        Each sample is posted ``minutes_ago`` before now (or at its ``created_at``).
        """
        if city_account:
            self.add_user(city_account["username"], city_account.get("name", ""), user_id=city_account["id"])
        count = 0
        for sample in samples:
            get = _getter(sample)
            if get("platform", "twitter") not in ("twitter", "x"):
                continue
            created = get("created_at")
            if isinstance(created, str):
                created = datetime.fromisoformat(created.replace("Z", "+00:00"))
            if created is None and get("minutes_ago") is not None:
                created = self.now() - timedelta(minutes=float(get("minutes_ago")))
            self.add_tweet(
                get("text", ""),
                author=get("author_handle") or get("author") or "warga_kupang",
                created_at=created,
            )
            count += 1
        return count


def _getter(sample: Any) -> Any:
    if isinstance(sample, dict):
        return sample.get
    return lambda key, default=None: getattr(sample, key, default)


def _mentions(text: str) -> set[str]:
    return {w.strip(".,:;!?()").lstrip("@").lower() for w in text.split() if w.startswith("@")}


def _matches(query: str, text: str) -> bool:
    """A subset of X's query language: AND by space, OR, parentheses, -negation, "phrases",
    #hashtags and @handles as plain terms; operators such as ``lang:id`` and ``is:retweet`` are
    accepted and ignored (so ``-is:retweet`` excludes nothing)."""
    tokens = re.findall(r'-?"[^"]*"|\(|\)|[^\s()]+', query)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def or_expr() -> bool:
        value = and_expr()
        while peek() == "OR":
            take()
            value = and_expr() or value
        return value

    def and_expr() -> bool:
        value = True
        while peek() not in (None, ")", "OR"):
            value = unary() and value
        return value

    def unary() -> bool:
        token = take()
        if token == "(":
            value = or_expr()
            if peek() == ")":
                take()
            return value
        negate = token.startswith("-") and len(token) > 1
        term = token[1:] if negate else token
        term = term.strip('"').lower()
        if ":" in term and not term.startswith(("#", "@")):
            return True
        return (term in haystack) != negate

    haystack = text.lower()
    return bool(tokens) and or_expr()


def _problem(status: int, title: str, detail: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse(
        {"title": title, "detail": detail, "type": "about:blank", "status": status},
        status_code=status,
        headers=headers,
    )


def create_app(state: TwitterState | None = None) -> FastAPI:
    """The X API stand-in over ``state``."""
    state = state or TwitterState()
    app = FastAPI(title="X API v2 stand-in")
    app.state.twitter = state

    def rate_headers(remaining: int = 449) -> dict[str, str]:
        reset = int(state.clock()) + state.rate_limit_window_seconds
        return {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(reset),
        }

    def guard(request: Request) -> Response | None:
        state.request_log.append((request.url.path, dict(request.query_params)))
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        if (
            not auth.startswith("Bearer ")
            or token in state.expired_tokens
            or (state.bearer_tokens is not None and token not in state.bearer_tokens)
        ):
            return _problem(401, "Unauthorized", "Unauthorized", rate_headers())
        fault = state.faults.next_request()
        if fault == "429":
            return _problem(429, "Too Many Requests", "Too Many Requests", rate_headers(0))
        if fault == "403":
            return JSONResponse(
                {
                    "title": "Forbidden",
                    "detail": "Your client app is not configured with the appropriate oauth1 "
                    "app permissions for this endpoint.",
                    "type": "https://api.twitter.com/2/problems/oauth1-permissions",
                    "status": 403,
                },
                status_code=403,
                headers=rate_headers(),
            )
        if fault in ("500", "503"):
            title = "Internal Server Error" if fault == "500" else "Service Unavailable"
            return _problem(int(fault), title, title, rate_headers())
        if fault == "html":
            return Response("<html>over capacity</html>", status_code=503, media_type="text/html")
        return None

    def timeline(request: Request, candidates: list[StoredTweet], token_param: str) -> Response:
        q = request.query_params
        try:
            max_results = int(q.get("max_results", "10"))
        except ValueError:
            max_results = 0
        if not 5 <= max_results <= 100:
            return _invalid("max_results", "The `max_results` query parameter value is not between 5 and 100")
        since_id = int(q["since_id"]) if q.get("since_id", "").isdigit() else None
        until_id = int(q["until_id"]) if q.get("until_id", "").isdigit() else None
        rows = sorted(candidates, key=lambda t: t.sort_id, reverse=True)
        if since_id is not None:
            rows = [t for t in rows if t.sort_id > since_id]
        if until_id is not None:
            rows = [t for t in rows if t.sort_id < until_id]
        token = q.get(token_param)
        if token:
            try:
                after = int(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError:
                return _invalid(token_param, "Invalid pagination token")
            rows = [t for t in rows if t.sort_id < after]
        page, rest = rows[:max_results], rows[max_results:]
        if not page:
            return JSONResponse({"meta": {"result_count": 0}}, headers=rate_headers())
        fields = set(filter(None, q.get("tweet.fields", "").split(","))) | DEFAULT_FIELDS
        data = [_select(t.payload, fields) for t in page]
        body: dict[str, Any] = {"data": data}
        includes = _includes(state, [t.payload for t in page], q)
        if includes:
            body["includes"] = includes
        meta: dict[str, Any] = {
            "newest_id": str(page[0].sort_id),
            "oldest_id": str(page[-1].sort_id),
            "result_count": len(page),
        }
        if rest:
            meta["next_token"] = base64.urlsafe_b64encode(str(page[-1].sort_id).encode()).decode()
        if token and state.repeat_next_token > 0:
            state.repeat_next_token -= 1  # X's pagination misbehaving: the same cursor again
            meta["next_token"] = token
        body["meta"] = meta
        return JSONResponse(body, headers=rate_headers())

    @app.get("/2/users/{user_id}/mentions")
    def mentions(user_id: str, request: Request) -> Response:
        refused = guard(request)
        if refused is not None:
            return refused
        user = state.users.get(user_id)
        if user is None:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "value": user_id,
                            "detail": f"Could not find user with id: [{user_id}].",
                            "title": "Not Found Error",
                            "resource_type": "user",
                            "parameter": "id",
                            "resource_id": user_id,
                            "type": "https://api.twitter.com/2/problems/resource-not-found",
                        }
                    ]
                },
                headers=rate_headers(),
            )
        handle = user["username"].lower()
        mentioning = sorted(
            (t for t in state.tweets if handle in t.mentions), key=lambda t: t.sort_id, reverse=True
        )
        return timeline(request, mentioning[:MENTIONS_REACHABLE], "pagination_token")

    @app.get("/2/tweets/search/recent")
    def search_recent(request: Request) -> Response:
        refused = guard(request)
        if refused is not None:
            return refused
        query = request.query_params.get("query", "")
        if not query:
            return _invalid("query", "The `query` query parameter can not be empty")
        window_start = state.now() - SEARCH_WINDOW
        since_id = request.query_params.get("since_id", "")
        if since_id.isdigit() and int(since_id) < snowflake(window_start, 0):
            return _invalid(
                "since_id",
                f"Invalid 'since_id':'{since_id}'. 'since_id' must be a tweet id created "
                "after the start of the search window.",
            )
        rows = [t for t in state.tweets if t.created_at >= window_start and _matches(query, t.text)]
        return timeline(request, rows, "next_token")

    return app


def _invalid(parameter: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
        status_code=400,
    )


def _select(payload: Any, fields: set[str]) -> Any:
    if not isinstance(payload, dict):
        return payload
    return {k: v for k, v in payload.items() if k in fields or k not in _OPTIONAL_FIELDS}


_OPTIONAL_FIELDS = {
    "author_id",
    "created_at",
    "conversation_id",
    "lang",
    "referenced_tweets",
    "attachments",
    "geo",
    "public_metrics",
    "entities",
    "in_reply_to_user_id",
}


def _includes(state: TwitterState, tweets: list[Any], q: Any) -> dict[str, list[dict[str, Any]]]:
    expansions = set(filter(None, q.get("expansions", "").split(",")))
    includes: dict[str, list[dict[str, Any]]] = {}
    dicts = [t for t in tweets if isinstance(t, dict)]
    if "referenced_tweets.id" in expansions:
        refs = []
        for t in dicts:
            for r in _list(t.get("referenced_tweets")):
                found = state.find(str(r.get("id"))) if isinstance(r, dict) else None
                if found is not None and found.payload not in refs:
                    refs.append(found.payload)
        if refs:
            includes["tweets"] = refs
            dicts = dicts + refs
    if "author_id" in expansions:
        users = []
        for t in dicts:
            user = state.users.get(str(t.get("author_id")))
            if user and user not in users:
                users.append(user)
        if users:
            includes["users"] = users
    if "attachments.media_keys" in expansions:
        media = [
            state.media[k]
            for t in dicts
            for k in _list(_dict(t.get("attachments")).get("media_keys"))
            if isinstance(k, str) and k in state.media
        ]
        if media:
            includes["media"] = media
    if "geo.place_id" in expansions:
        places = [
            state.places[p]
            for t in dicts
            if isinstance(p := _dict(t.get("geo")).get("place_id"), str) and p in state.places
        ]
        if places:
            includes["places"] = places
    return includes


def _list(value: Any) -> list[Any]:
    # Malformed tweets (tests put them in) are served as they are; expansions just skip them.
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
