"""A stand-in for the Facebook and Instagram Graph API, faithful to the wire format.

Nodes and edges as Graph serves them: ``/{version}/{page-id}/feed``, ``/tagged``,
``/{post-id}/comments``, ``/{ig-user-id}/tags``, ``/media``, ``/{media-id}/comments``, single
objects, and the ``mentioned_comment``/``mentioned_media`` field expansions on an IG user.
Paging is by cursors (``paging.cursors.before/after``, ``paging.next``; a page may be empty and
still have ``next``). Errors are ``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}`` with Graph's codes; throttling answers carry ``x-business-use-case-usage``.
:func:`sign` produces the ``X-Hub-Signature-256`` a Meta webhook POST carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from standins.faults import Faults

ERRORS: dict[str, tuple[int, str, str, bool]] = {
    # code: (HTTP status, type, message, is_transient)
    "1": (500, "OAuthException", "An unknown error occurred", True),
    "2": (503, "OAuthException", "An unexpected error has occurred. Please retry your request later.", True),
    "4": (403, "OAuthException", "(#4) Application request limit reached", True),
    "17": (403, "OAuthException", "(#17) User request limit reached", True),
    "32": (403, "OAuthException", "(#32) Page request limit reached", True),
    "613": (400, "OAuthException", "(#613) Calls to this api have exceeded the rate limit.", True),
    "100": (400, "OAuthException", "(#100) Unsupported get request.", False),
    "102": (401, "OAuthException", "Session key invalid or no longer valid", False),
    "190": (400, "OAuthException", "Error validating access token: Session has expired.", False),
    "10": (403, "OAuthException", "(#10) Application does not have permission for this action", False),
}


# What the IG User ``mentioned_comment`` field expansion can return (Meta's reference lists only these;
# the comment's author is not among them). Asking for anything else is Graph error #100.
MENTIONED_COMMENT_FIELDS = frozenset({"id", "like_count", "media", "text", "timestamp"})
# The same for ``mentioned_media``: no ``permalink`` (a caption mention has no link we can ask for).
MENTIONED_MEDIA_FIELDS = frozenset(
    {"caption", "comments", "comments_count", "id", "like_count", "media_type", "media_url", "owner", "timestamp",
     "username"}
)


def sign(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` header Meta sends with a webhook whose raw body is ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def ig_time(value: datetime) -> str:
    return graph_time(value)


@dataclass
class Node:
    id: str
    kind: str  # fb_post | fb_comment | ig_media | ig_comment | raw
    created_at: datetime
    payload: dict[str, Any]
    edges: set[str] = field(default_factory=set)  # e.g. "feed:PAGE", "tagged:PAGE", "comments:POST"


@dataclass
class GraphState:
    """In-memory Graph: pages, posts, comments, IG accounts and media; plus fault knobs."""

    access_tokens: set[str] | None = None  # None: any token accepted
    expired_tokens: set[str] = field(default_factory=set)
    faults: Faults = field(default_factory=lambda: Faults(choices=["2"]))
    throttle_minutes: int = 0  # estimated_time_to_regain_access sent with throttling errors
    clock: Any = time.time
    empty_first_page: bool = False
    error_messages: dict[str, str] = field(default_factory=dict)  # code: message sent instead of the usual
    repeat_next: int = 0  # this many pages asked for with a cursor answer a `next` with that same cursor
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    ig_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    request_log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _id(self) -> str:
        return str(next(self._seq))

    def add_page(self, page_id: str, name: str) -> str:
        self.pages[page_id] = {"id": page_id, "name": name}
        return page_id

    def add_ig_account(self, ig_id: str, username: str) -> str:
        self.ig_accounts[ig_id] = {"id": ig_id, "username": username}
        return ig_id

    def _add(self, node: Node) -> str:
        with self._lock:
            self.nodes[node.id] = node
        return node.id

    def add_post(
        self,
        page_id: str,
        message: str,
        *,
        author: tuple[str, str] = ("5001", "Warga Kupang"),
        created_at: datetime | None = None,
        tagged: bool = False,
    ) -> str:
        """A post on ``page_id``'s feed (a visitor post unless ``author`` is the page) or tagging it."""
        created = created_at or self.now()
        owner = author[0] if tagged else page_id
        post_id = f"{owner}_{900000 + int(self._id())}"
        payload = {
            "id": post_id,
            "message": message,
            "created_time": graph_time(created),
            "updated_time": graph_time(created),
            "from": {"id": author[0], "name": author[1]},
            "permalink_url": f"https://www.facebook.com/{post_id}",
            "status_type": "mobile_status_update",
        }
        edge = f"tagged:{page_id}" if tagged else f"feed:{page_id}"
        return self._add(Node(post_id, "fb_post", created, payload, {edge}))

    def add_comment(
        self,
        post_id: str,
        message: str,
        *,
        author: tuple[str, str] = ("5002", "Warga Oebobo"),
        created_at: datetime | None = None,
        parent_comment: str | None = None,
    ) -> str:
        created = created_at or self.now()
        comment_id = f"{post_id.split('_')[-1]}_{700000 + int(self._id())}"
        payload: dict[str, Any] = {
            "id": comment_id,
            "message": message,
            "created_time": graph_time(created),
            "from": {"id": author[0], "name": author[1]},
            "permalink_url": f"https://www.facebook.com/{post_id}?comment_id={comment_id}",
        }
        if parent_comment:
            payload["parent"] = {"id": parent_comment}
        post = self.nodes.get(post_id)
        if post is not None and "updated_time" in post.payload:
            # Graph: a post's updated_time is the time it was created, last edited or last commented on.
            post.payload["updated_time"] = max(post.payload["updated_time"], graph_time(created))
        return self._add(Node(comment_id, "fb_comment", created, payload, {f"comments:{post_id}"}))

    def add_ig_media(
        self,
        account: str,
        caption: str,
        *,
        username: str = "warga.kupang",
        created_at: datetime | None = None,
        tagged: bool = True,
    ) -> str:
        """IG media: by someone tagging ``account`` (``tagged``) or the account's own media."""
        created = created_at or self.now()
        media_id = str(17_900_000_000_000_000 + int(self._id()))
        owner = username if tagged else self.ig_accounts.get(account, {}).get("username", "kotakupang")
        payload = {
            "id": media_id,
            "caption": caption,
            "media_type": "IMAGE",
            "media_url": f"https://scontent.cdninstagram.com/{media_id}.jpg",
            "permalink": f"https://www.instagram.com/p/{media_id}/",
            "timestamp": ig_time(created),
            "username": owner,
            "comments_count": 0,
        }
        edge = f"tags:{account}" if tagged else f"media:{account}"
        return self._add(Node(media_id, "ig_media", created, payload, {edge}))

    def add_ig_comment(
        self,
        media_id: str,
        text: str,
        *,
        username: str = "warga.oebobo",
        created_at: datetime | None = None,
        parent_id: str | None = None,
    ) -> str:
        created = created_at or self.now()
        comment_id = str(18_000_000_000_000_000 + int(self._id()))
        payload: dict[str, Any] = {
            "id": comment_id,
            "text": text,
            "timestamp": ig_time(created),
            "username": username,
            "from": {"id": str(abs(hash(username)) % 10**10), "username": username},
            "media": {"id": media_id, "permalink": f"https://www.instagram.com/p/{media_id}/"},
        }
        if parent_id:
            payload["parent_id"] = parent_id
            self.nodes[parent_id].edges  # noqa: B018 - must exist
            return self._add(Node(comment_id, "ig_comment", created, payload, {f"replies:{parent_id}"}))
        return self._add(Node(comment_id, "ig_comment", created, payload, {f"comments:{media_id}"}))

    def add_raw(self, edge: str, payload: dict[str, Any], *, created_at: datetime | None = None) -> str:
        """Serve ``payload`` as-is on ``edge`` (e.g. ``"feed:PAGE"``), to test malformed items."""
        created = created_at or self.now()
        node_id = str(payload.get("id") or f"raw-{self._id()}")
        return self._add(Node(node_id, "raw", created, payload, {edge}))

    def edit(self, node_id: str, text: str) -> None:
        """Edit a post or comment's text (and ``updated_time``)."""
        payload = self.nodes[node_id].payload
        payload["message" if "message" in payload else ("caption" if "caption" in payload else "text")] = text
        if "updated_time" in payload:
            payload["updated_time"] = graph_time(self.now())

    def load_samples(
        self, samples: list[Any], *, page: dict[str, str], ig_account: dict[str, str] | None = None
    ) -> int:
        """Load sample posts (``standins.samples.SamplePost`` or dicts) onto a page and an IG account.

        Kinds: ``feed`` (visitor post), ``comment`` (under the page's own announcement), ``tagged``
        (a post tagging the page), ``ig_tagged`` (media tagging the IG account), ``ig_comment``
        (comment on the account's own media). ``page``/``ig_account``: {"id", "name"/"username"}.
        Returns how many samples were loaded.
        """
        page_id = page["id"]
        self.add_page(page_id, page.get("name", "Page"))
        if ig_account:
            self.add_ig_account(ig_account["id"], ig_account.get("username", "account"))
        announcement: str | None = None
        own_media: str | None = None
        count = 0
        for index, sample in enumerate(samples):
            get = (
                sample.get
                if isinstance(sample, dict)
                else (lambda key, default=None, s=sample: getattr(s, key, default))
            )
            platform, kind, text = get("platform", ""), get("kind", ""), get("text", "")
            created = get("created_at")
            if isinstance(created, str):
                created = datetime.fromisoformat(created.replace("Z", "+00:00"))
            if created is None and get("minutes_ago") is not None:
                created = self.now() - timedelta(minutes=float(get("minutes_ago") or 0))
            author = str(get("author_name") or get("author") or "Warga Kupang")
            author_ref = (str(5000 + index), author)
            if platform == "facebook" and kind == "comment":
                if announcement is None:
                    announcement = self.add_post(
                        page_id,
                        "Pemberitahuan resmi Pemerintah Kota Kupang",
                        author=(page_id, page.get("name", "Page")),
                        created_at=self.now() - timedelta(hours=6),
                    )
                self.add_comment(announcement, text, author=author_ref, created_at=created)
            elif platform == "facebook":
                self.add_post(page_id, text, author=author_ref, created_at=created, tagged=kind == "tagged")
            elif platform == "instagram" and ig_account and kind in ("ig_comment", "comment"):
                if own_media is None:
                    own_media = self.add_ig_media(
                        ig_account["id"],
                        "Kegiatan Pemerintah Kota Kupang",
                        tagged=False,
                        created_at=self.now() - timedelta(hours=6),
                    )
                self.add_ig_comment(
                    own_media, text, username=str(get("author_handle") or author), created_at=created
                )
            elif platform == "instagram" and ig_account:
                self.add_ig_media(
                    ig_account["id"], text, username=str(get("author_handle") or author), created_at=created
                )
            else:
                continue
            count += 1
        return count

    def webhook_ig_mention(
        self, account: str, *, media_id: str, comment_id: str | None = None
    ) -> dict[str, Any]:
        """The body Meta POSTs when ``account`` is @mentioned in a caption or comment."""
        value: dict[str, Any] = {"media_id": media_id}
        if comment_id:
            value["comment_id"] = comment_id
        return {
            "object": "instagram",
            "entry": [
                {"id": account, "time": int(self.clock()), "changes": [{"field": "mentions", "value": value}]}
            ],
        }

    def webhook_page_feed(self, page_id: str, node_id: str, *, verb: str = "add") -> dict[str, Any]:
        """The body Meta POSTs for a Page ``feed`` change (a post or comment added/edited)."""
        node = self.nodes[node_id]
        value: dict[str, Any] = {
            "verb": verb,
            "created_time": int(node.created_at.timestamp()),
            "from": node.payload.get("from"),
            "message": node.payload.get("message", ""),
        }
        if node.kind == "fb_comment":
            value |= {
                "item": "comment",
                "comment_id": node_id,
                "post_id": next(e for e in node.edges if e.startswith("comments:")).split(":", 1)[1],
            }
        else:
            value |= {"item": "status", "post_id": node_id}
        return {
            "object": "page",
            "entry": [
                {"id": page_id, "time": int(self.clock()), "changes": [{"field": "feed", "value": value}]}
            ],
        }


def _split_fields(spec: str) -> dict[str, str]:
    """``a,b{c,d},e.f(1){g}`` → {"a": "", "b": "c,d", "e.f(1)": "g"} (top level only)."""
    out: dict[str, str] = {}
    depth, name, inner = 0, "", ""
    for ch in spec + ",":
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                continue
        if depth == 0 and ch == ",":
            if name.strip():
                out[name.strip()] = inner
            name, inner = "", ""
        elif depth == 0:
            name += ch
        else:
            inner += ch
    return out


def _project(payload: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return {
            k: payload[k]
            for k in ("id", "message", "created_time", "text", "timestamp", "caption")
            if k in payload
        }
    wanted = _split_fields(fields)
    out = {"id": payload["id"]} if "id" in payload else {}
    for name, inner in wanted.items():
        if name in payload:
            value = payload[name]
            if inner and isinstance(value, dict):
                value = _project(value, inner)
            out[name] = value
    return out


def _error(
    code: str, headers: dict[str, str] | None = None, subcode: int | None = None, message: str | None = None
) -> JSONResponse:
    status, kind, usual, transient = ERRORS[code]
    message = message or usual
    body: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": int(code),
        "fbtrace_id": base64.b32encode(hashlib.sha1(message.encode()).digest()[:8]).decode(),
    }  # noqa: S324
    if transient:
        body["is_transient"] = True
    if subcode:
        body["error_subcode"] = subcode
    return JSONResponse({"error": body}, status_code=status, headers=headers or {})


def _nonexisting_field(name: str, node_type: str) -> JSONResponse:
    return _error("100", message=f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})")


def _cursor(node: Node) -> str:
    return (
        base64.urlsafe_b64encode(f"{node.created_at.timestamp():.6f}|{node.id}".encode()).decode().rstrip("=")
    )


def _decode_cursor(cursor: str) -> tuple[float, str]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    stamp, node_id = raw.split("|", 1)
    return float(stamp), node_id


def _time_param(value: str | None) -> float | None:
    if not value:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00")).timestamp()
    except ValueError:
        return None


def create_app(state: GraphState | None = None) -> FastAPI:
    """The Graph API stand-in over ``state``."""
    state = state or GraphState()
    app = FastAPI(title="Graph API stand-in")
    app.state.graph = state

    def usage_headers(throttled: bool = False) -> dict[str, str]:
        headers = {
            "x-app-usage": json.dumps(
                {"call_count": 100 if throttled else 5, "total_cputime": 1, "total_time": 1}
            )
        }
        if throttled and state.throttle_minutes:
            headers["x-business-use-case-usage"] = json.dumps(
                {
                    "0": [
                        {
                            "type": "pages",
                            "call_count": 100,
                            "estimated_time_to_regain_access": state.throttle_minutes,
                        }
                    ]
                }
            )
        return headers

    def guard(request: Request) -> Response | None:
        state.request_log.append((request.url.path, dict(request.query_params)))
        token = request.query_params.get("access_token") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        if not token:
            return _error("190", subcode=None)
        if token in state.expired_tokens:
            return _error("190", subcode=463)
        if state.access_tokens is not None and token not in state.access_tokens:
            return _error("190")
        fault = state.faults.next_request()
        if fault is None:
            return None
        if fault == "html":
            return Response("<html>Bad gateway</html>", status_code=502, media_type="text/html")
        if fault in ERRORS:
            return _error(
                fault,
                usage_headers(throttled=fault in ("4", "17", "32", "613")),
                message=state.error_messages.get(fault),
            )
        return _error("2")

    def listing(request: Request, edge: str) -> Response:
        q = request.query_params
        limit = max(1, min(100, int(q.get("limit", "25")) if q.get("limit", "25").isdigit() else 25))
        since, until = _time_param(q.get("since")), _time_param(q.get("until"))
        rows = [n for n in list(state.nodes.values()) if edge in n.edges]
        if since is not None:
            rows = [n for n in rows if n.created_at.timestamp() >= since]
        if until is not None:
            rows = [n for n in rows if n.created_at.timestamp() <= until]
        order = q.get(
            "order", "reverse_chronological" if not edge.startswith("comments:") else "chronological"
        )
        if edge.startswith(("feed:", "tagged:", "tags:", "media:")):
            order = "reverse_chronological"
        reverse = order == "reverse_chronological"
        rows.sort(key=lambda n: (n.created_at.timestamp(), n.id), reverse=reverse)
        after = q.get("after")
        if after and not after.startswith("e"):
            try:
                key = _decode_cursor(after)
            except (ValueError, UnicodeDecodeError):
                return _error("100")
            rows = [
                n
                for n in rows
                if ((n.created_at.timestamp(), n.id) < key) == reverse
                and (n.created_at.timestamp(), n.id) != key
            ]
        elif state.empty_first_page and not after:
            # Graph may answer an empty page that still has a next link.
            return JSONResponse(
                {"data": [], "paging": {"next": _next_url(request, "e")}}, headers=usage_headers()
            )
        page, rest = rows[:limit], rows[limit:]
        fields = q.get("fields")
        data = []
        for node in page:
            item = _project(node.payload, fields) if node.kind != "raw" else node.payload
            if node.kind == "ig_comment" and fields and "replies" in _split_fields(fields):
                replies = sorted(
                    (n for n in state.nodes.values() if f"replies:{node.id}" in n.edges),
                    key=lambda n: n.created_at,
                )
                if replies:
                    item["replies"] = {
                        "data": [_project(r.payload, _split_fields(fields)["replies"]) for r in replies]
                    }
            data.append(item)
        body: dict[str, Any] = {"data": data}
        if page:
            body["paging"] = {"cursors": {"before": _cursor(page[0]), "after": _cursor(page[-1])}}
            if rest:
                body["paging"]["next"] = _next_url(request, _cursor(page[-1]))
        if after and not after.startswith("e") and state.repeat_next > 0:
            state.repeat_next -= 1  # Graph's paging misbehaving: `next` leads to this page again
            body.setdefault("paging", {})["next"] = _next_url(request, after)
        return JSONResponse(body, headers=usage_headers())

    def _next_url(request: Request, after: str) -> str:
        params = dict(request.query_params)
        params["after"] = after
        from urllib.parse import urlencode

        return f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(params)}"

    @app.get("/{version}/{node_id}/{edge}")
    def edge(version: str, node_id: str, edge: str, request: Request) -> Response:
        refused = guard(request)
        if refused is not None:
            return refused
        if edge not in ("feed", "tagged", "comments", "tags", "media", "visitor_posts"):
            return _error("100")
        if edge in ("feed", "tagged", "visitor_posts") and node_id not in state.pages:
            return _error("100")
        if edge in ("tags", "media") and node_id not in state.ig_accounts:
            return _error("100")
        return listing(request, f"{'feed' if edge == 'visitor_posts' else edge}:{node_id}")

    @app.get("/{version}/{node_id}")
    def node(version: str, node_id: str, request: Request) -> Response:
        refused = guard(request)
        if refused is not None:
            return refused
        fields = request.query_params.get("fields")
        if node_id in state.ig_accounts:
            out: dict[str, Any] = {"id": node_id}
            for name, inner in _split_fields(fields or "username").items():
                match = re.fullmatch(
                    r"(mentioned_comment\.comment_id|mentioned_media\.media_id)\((\w+)\)", name
                )
                if match:
                    target = state.nodes.get(match.group(2))
                    if target is None:
                        return _error("100")
                    comment = match.group(1).startswith("mentioned_comment")
                    allowed = MENTIONED_COMMENT_FIELDS if comment else MENTIONED_MEDIA_FIELDS
                    unknown = [f for f in _split_fields(inner) if f not in allowed]
                    if unknown:
                        return _nonexisting_field(unknown[0], "IGComment" if comment else "IGMedia")
                    out[match.group(1).split(".")[0]] = _project(target.payload, inner)
                elif name in state.ig_accounts[node_id]:
                    out[name] = state.ig_accounts[node_id][name]
            return JSONResponse(out, headers=usage_headers())
        if node_id in state.pages:
            return JSONResponse(_project(state.pages[node_id], fields or "id,name"), headers=usage_headers())
        target = state.nodes.get(node_id)
        if target is None:
            return JSONResponse(
                {
                    "error": {
                        "message": f"(#100) Object with ID '{node_id}' does not exist",
                        "type": "GraphMethodException",
                        "code": 100,
                        "error_subcode": 33,
                    }
                },
                status_code=400,
            )
        return JSONResponse(
            target.payload if target.kind == "raw" else _project(target.payload, fields),
            headers=usage_headers(),
        )

    return app
