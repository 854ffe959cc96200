"""Meta webhooks: signature check, and what each notification asks us to fetch.

Meta signs every POST with ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body, keyed with
the app secret>``; the check must run on the raw bytes (before any JSON parsing) and compare in
constant time. Notifications carry ids, not trustworthy content, so we fetch the canonical object
from the Graph API: an IG ``mentions`` change names a comment or a media (read through the
``mentioned_comment`` / ``mentioned_media`` field expansions of our IG account), a Page ``feed``
change names a post or a comment. The fetched object normalises exactly like a polled one, so a
post seen by webhook and by poll is stored once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harvester.graph import FacebookCollector, GraphClient, InstagramCollector
from harvester.types import (
    HarvestError,
    QuarantinedItem,
    RateLimited,
    RawItem,
    SourceAuthError,
    TransientError,
)


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True if ``header`` is the valid ``sha256=`` HMAC of ``raw_body`` under ``app_secret``."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str (a hostile header is latin-1).
    given = header.removeprefix("sha256=").strip().lower()
    return hmac.compare_digest(expected.encode(), given.encode())


def verify_handshake(params: dict[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo if the subscription handshake is ours, else None."""
    if (
        verify_token
        and params.get("hub.mode") == "subscribe"
        and hmac.compare_digest(params.get("hub.verify_token", "").encode(), verify_token.encode())
    ):
        return params.get("hub.challenge", "")
    return None


@dataclass
class Change:
    """One change of one entry of a notification."""

    object: str  # instagram | page
    entry_id: str  # IG user id or Page id
    field: str
    value: dict[str, Any]

    def fetch(self, client: GraphClient) -> list[RawItem | QuarantinedItem]:
        """Fetch the object(s) the change names; a failure is quarantined with the notification.

        Raised instead: a platform outage or throttling (Meta should deliver again) and a rejected
        token or permission (``SourceAuthError``: the source must be stopped, which the caller does).
        """
        try:
            return [item for item in self._fetchers(client)]
        except (TransientError, RateLimited):
            raise  # the receiver answers 503 and Meta delivers the notification again
        except SourceAuthError:
            raise  # the caller quarantines the notification and stops the source, as a poll would
        except HarvestError as exc:
            return [QuarantinedItem.of(self.platform, f"webhook fetch failed: {exc}", self.as_dict())]

    @property
    def platform(self) -> str:
        return "instagram" if self.object == "instagram" else "facebook"

    def as_dict(self) -> dict[str, Any]:
        return {"object": self.object, "entry_id": self.entry_id, "field": self.field, "value": self.value}

    def _fetchers(self, client: GraphClient) -> Iterator[RawItem | QuarantinedItem]:
        if self.object == "instagram" and self.field == "mentions":
            ig = InstagramCollector(client=client, account_ids=[self.entry_id])
            if self.value.get("comment_id"):
                yield ig.fetch_mentioned_comment(self.entry_id, str(self.value["comment_id"]))
            elif self.value.get("media_id"):
                yield ig.fetch_mentioned_media(self.entry_id, str(self.value["media_id"]))
            else:
                yield QuarantinedItem.of(
                    "instagram", "mentions change names no media or comment", self.as_dict()
                )
        elif self.object == "instagram" and self.field == "comments":
            comment_id = self.value.get("id")
            if comment_id:
                body = client.get(
                    str(comment_id), {"fields": "id,text,timestamp,username,from,parent_id,media"}
                )
                from harvester.graph import parse_ig_comment

                yield parse_ig_comment(body, None)
            else:
                yield QuarantinedItem.of("instagram", "comments change names no comment", self.as_dict())
        elif self.object == "page" and self.field == "feed":
            if self.value.get("verb") == "remove":
                return  # deletions are not harvested; the stored post stays for the record
            fb = FacebookCollector(client=client, page_ids=[self.entry_id])
            item = self.value.get("item")
            fetch: Callable[[str], RawItem | QuarantinedItem]
            if item == "comment" and self.value.get("comment_id"):
                target, fetch = str(self.value["comment_id"]), fb.fetch_comment
            elif self.value.get("post_id"):
                target, fetch = str(self.value["post_id"]), fb.fetch_post
            else:
                yield QuarantinedItem.of("facebook", "feed change names no post or comment", self.as_dict())
                return
            fetched = fetch(target)
            if isinstance(fetched, RawItem) and fetched.kind == "fb_comment" and self.value.get("post_id"):
                fetched.thread_external_id = str(self.value["post_id"])
                if fetched.parent_external_id == target.split("_")[0]:
                    fetched.parent_external_id = str(self.value["post_id"])
            yield fetched


def parse_changes(payload: object) -> list[Change]:
    """The changes a notification body lists (unknown objects and fields are skipped)."""
    if not isinstance(payload, dict) or payload.get("object") not in ("instagram", "page"):
        return []
    changes = []
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for change in entry.get("changes") or []:
            if isinstance(change, dict) and isinstance(change.get("value"), dict):
                changes.append(
                    Change(
                        str(payload["object"]),
                        str(entry.get("id", "")),
                        str(change.get("field")),
                        change["value"],
                    )
                )
    return changes
