"""Reply on a citizen's original post (X, Facebook, Instagram) with a short message.

Knows nothing of the database: the caller passes the platform's id of the post and the text. Uses
tweepy ``Client.create_tweet(in_reply_to_tweet_id=...)`` and facebook-sdk's Graph comment call, both
on the configured base URLs (``harvester.http.RebasingSession``), so they run against the stand-ins.

X needs a user-context token to post (an OAuth 2.0 user access token in
``JARING_TWITTER_REPLY_TOKEN``); the app-only bearer token used for harvesting cannot tweet.
"""

from __future__ import annotations

import facebook
import requests
import tweepy

from harvester.http import RebasingSession
from jaring.settings import Settings, get_settings

TWITTER_UPSTREAM = "https://api.twitter.com"
GRAPH_UPSTREAM = "https://graph.facebook.com"


class ReplyError(Exception):
    """The reply was not posted. ``retryable``: try later; ``sent_maybe``: it may have been posted."""

    def __init__(self, message: str, *, retryable: bool, sent_maybe: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.sent_maybe = sent_maybe


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else None


def reply_on_twitter(*, tweet_id: str, text: str, settings: Settings) -> str:
    """Post ``text`` as a reply to ``tweet_id``; returns the new tweet's id."""
    token = _secret(settings.twitter_reply_token)
    if not token:
        raise ReplyError("JARING_TWITTER_REPLY_TOKEN is not set", retryable=False)
    client = tweepy.Client(bearer_token=token)
    client.session = RebasingSession(
        upstream=TWITTER_UPSTREAM, base=settings.twitter_api_base, timeout=settings.http_timeout_seconds
    )
    try:
        response = client.create_tweet(text=text, in_reply_to_tweet_id=tweet_id, user_auth=False)
    except tweepy.TooManyRequests as exc:
        raise ReplyError(f"X rate limit: {exc.__class__.__name__}", retryable=True) from None
    except tweepy.TwitterServerError as exc:
        raise ReplyError(f"X server error: {exc.__class__.__name__}", retryable=True, sent_maybe=True) from None
    except tweepy.HTTPException as exc:
        raise ReplyError(f"X refused the reply: {exc.__class__.__name__}", retryable=False) from None
    except requests.Timeout:
        raise ReplyError("X did not answer in time", retryable=True, sent_maybe=True) from None
    except requests.RequestException as exc:
        raise ReplyError(f"X unreachable: {exc.__class__.__name__}", retryable=True) from None
    return str((response.data or {}).get("id", ""))


def reply_on_graph(*, object_id: str, text: str, token: str | None, settings: Settings, instagram: bool) -> str:
    """Comment ``text`` on a Facebook post/comment, or reply to an Instagram comment; returns its id."""
    if not token:
        raise ReplyError("no Graph token configured for replies", retryable=False)
    session = RebasingSession(upstream=GRAPH_UPSTREAM, base=settings.graph_api_base,
                              timeout=settings.http_timeout_seconds)
    api = facebook.GraphAPI(access_token=token, timeout=settings.http_timeout_seconds, session=session)
    version = settings.graph_api_version
    api.version = version if version.startswith("v") else f"v{version}"
    # Instagram answers a comment through /{ig-comment-id}/replies; Facebook through /{id}/comments.
    edge = "replies" if instagram else "comments"
    try:
        result = api.put_object(object_id, edge, message=text)
    except facebook.GraphAPIError as exc:
        code = getattr(exc, "code", None)
        retryable = code in (1, 2, 4, 17, 32, 613)
        raise ReplyError(f"Graph refused the reply (code {code})", retryable=retryable) from None
    except requests.Timeout:
        raise ReplyError("Graph did not answer in time", retryable=True, sent_maybe=True) from None
    except requests.RequestException as exc:
        raise ReplyError(f"Graph unreachable: {exc.__class__.__name__}", retryable=True) from None
    return str((result or {}).get("id", ""))


def reply(*, platform: str, target_id: str, text: str, settings: Settings | None = None) -> str:
    """Reply on ``platform`` to the item ``target_id``; returns the reply's id. Raises ReplyError."""
    settings = settings or get_settings()
    if platform == "twitter":
        return reply_on_twitter(tweet_id=target_id, text=text, settings=settings)
    if platform == "facebook":
        return reply_on_graph(object_id=target_id, text=text, token=_secret(settings.facebook_page_token),
                              settings=settings, instagram=False)
    if platform == "instagram":
        return reply_on_graph(object_id=target_id, text=text, token=_secret(settings.instagram_token),
                              settings=settings, instagram=True)
    raise ReplyError(f"replies are not supported on {platform!r}", retryable=False)
