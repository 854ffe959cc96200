"""Shape a captured post into a formal LAPOR! complaint draft (the composer's prefill, auto-forward's body)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from classifier.city import City
from pipelines.models import Complaint, Post

# What the composer accepts for a judul and an isi (LAPOR!'s own form limits); every draft fits them.
TITLE_MIN, TITLE_MAX = 10, 150
BODY_MIN, BODY_MAX = 20, 4000
PLATFORM_NAMES = {"twitter": "X (Twitter)", "facebook": "Facebook", "instagram": "Instagram"}

_URL = re.compile(r"https?://\S+")
_WEB_LINK = re.compile(r"https?://[^\s/]", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_SPACES = re.compile(r"\s+")


@dataclass
class ComplaintDraft:
    """Fields of a formal complaint before a person (or the policy) queues it."""

    title: str
    body: str
    category: str
    topic: str | None
    agency: str | None
    opd: str
    instansi: str
    kecamatan: str | None
    kelurahan: str | None
    location_text: str
    incident_date: datetime | None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    anonymous: bool = False
    confidential: bool = True  # the author did not ask to be named in LAPOR!

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of the draft's fields."""
        return asdict(self)

    def to_complaint(
        self,
        *,
        post_id: int | None,
        created_by_id: int | None = None,
        auto: bool = False,
        model_version: str = "",
    ) -> Complaint:
        """A Complaint row from this draft (not added to any session); the title is cut to its column."""
        fields = self.as_dict()
        fields["title"] = fields["title"][:300]
        return Complaint(
            post_id=post_id,
            created_by_id=created_by_id,
            auto=auto,
            model_version=model_version,
            **fields,
        )


def clean_text(text: str) -> str:
    """Post text without links and @mentions, whitespace folded."""
    text = _URL.sub("", text or "")
    text = _MENTION.sub("", text)
    return _SPACES.sub(" ", text).strip(" .,-:")


def make_title(text: str, topic_label: str) -> str:
    """A short judul: the first sentence of the cleaned text, cut at a word boundary."""
    cleaned = clean_text(text)
    first = re.split(r"(?<=[.!?])\s", cleaned, maxsplit=1)[0] if cleaned else ""
    if not first:
        return f"Keluhan warga: {topic_label}"
    if len(first) > TITLE_MAX:
        # Room for the ellipsis; a first "word" longer than a title is cut where the title ends.
        cut = first[: TITLE_MAX - 1]
        first = (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"
    first = first[0].upper() + first[1:]
    return first if len(first) >= TITLE_MIN else f"Keluhan warga: {first}"


def is_web_link(url: object) -> bool:
    """Whether ``url`` is an absolute http(s) link (a platform payload may carry ``javascript:`` or worse)."""
    return isinstance(url, str) and _WEB_LINK.match(url) is not None


def draft_from_post(*, post: Post, city: City) -> ComplaintDraft:
    """Prefill a complaint from a post's text and current labels, routed with the city file."""
    topic = post.topic if post.relevance == "keluhan" or post.topic else None
    agency = post.agency or city.agency_for_topic(topic)
    location = city.find_location(post.text or "")
    kecamatan = post.kecamatan or (location.kecamatan if location else None)
    kelurahan = post.kelurahan or (location.kelurahan if location else None)
    opd = city.opd_for(agency, kecamatan=kecamatan)
    when = post.created_at
    platform = PLATFORM_NAMES.get(post.platform, post.platform)
    source_line = f"Sumber: {platform}"
    if when:
        source_line += f", {when:%d-%m-%Y %H:%M} UTC"
    if is_web_link(post.url):
        source_line += f" — {post.url}"
    body = clean_text(post.text)[: BODY_MAX - len(source_line) - 2]
    place = ", ".join(
        p for p in (f"Kel. {kelurahan}" if kelurahan else "", f"Kec. {kecamatan}" if kecamatan else "") if p
    )
    return ComplaintDraft(
        title=make_title(post.text, (topic or "lainnya").replace("_", " ")),
        body=f"{body}\n\n{source_line}",
        category=city.category_for(topic),
        topic=topic,
        agency=agency,
        opd=opd.name,
        instansi=opd.lapor_instansi,
        kecamatan=kecamatan,
        kelurahan=kelurahan,
        location_text=f"{place}, {city.name}" if place else city.name,
        incident_date=when,
        attachments=[
            {"type": m.get("type", ""), "url": m.get("url", "")}
            for m in (post.media or [])
            if isinstance(m, dict) and is_web_link(m.get("url"))
        ],
    )
