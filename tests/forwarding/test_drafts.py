"""The complaint draft made from a post: the composer's prefill and the auto-forwarded complaint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from classifier.city import load_city
from pipelines.complaints import BODY_MAX, BODY_MIN, TITLE_MAX, TITLE_MIN, draft_from_post, make_title
from pipelines.models import Post


def _post(text: str, *, url: str = "https://x.com/warga/status/1", media: list[object] | None = None) -> Post:
    return Post(
        platform="twitter", external_id="1", text=text, url=url, media=media or [], relevance="keluhan",
        topic="infrastruktur", agency="PUPR", created_at=datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "text",
    [
        "x" * 400,  # one "word" longer than a title: cut without a space to cut at
        "jalan " * 100,
        "Tolong!",  # shorter than a title may be
        "Ok.",
    ],
)
def test_a_drafted_title_is_one_the_composer_accepts(text: str) -> None:
    title = make_title(text, "infrastruktur")
    assert TITLE_MIN <= len(title) <= TITLE_MAX, title


def test_a_long_post_makes_a_body_within_the_composers_limit_that_keeps_its_source_line() -> None:
    draft = draft_from_post(post=_post("Jalan di Oebobo rusak parah. " * 400), city=load_city())
    assert BODY_MIN <= len(draft.body) <= BODY_MAX
    assert draft.body.endswith("— https://x.com/warga/status/1")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "//evil.example/x", "ftp://x/y"])
def test_only_http_links_of_a_post_reach_the_complaint(url: str) -> None:
    post = _post("Lampu jalan di Liliba mati sejak minggu lalu", url=url,
                 media=[{"type": "photo", "url": url}, {"type": "photo", "url": "https://cdn.example/foto.jpg"}])
    draft = draft_from_post(post=post, city=load_city())
    assert url not in draft.body
    assert draft.body.endswith("Sumber: X (Twitter), 01-12-2026 05:00 UTC")
    assert draft.attachments == [{"type": "photo", "url": "https://cdn.example/foto.jpg"}]


def test_the_composer_refuses_an_attachment_that_is_not_a_web_link_even_from_the_posts_own_media() -> None:
    from pipelines.review_actions import ComplaintForm

    post = _post("Sampah menumpuk di Pasar Oeba", media=[{"type": "photo", "url": "javascript:alert(1)"},
                                                      {"type": "photo", "url": "https://cdn.example/sampah.jpg"}])
    def form(url: str) -> ComplaintForm:
        return ComplaintForm(
            title="Sampah menumpuk di Pasar Oeba", body="Sampah menumpuk di Pasar Oeba sudah seminggu.",
            category="Lingkungan Hidup", topic="sampah", agency="LINGKUNGAN_HIDUP", instansi="DLHK Kota Kupang",
            attachments=[{"type": "photo", "url": url}],
        )
    assert "attachments" in form("javascript:alert(1)").validate(city=load_city(), post=post)
    assert "attachments" not in form("https://cdn.example/sampah.jpg").validate(city=load_city(), post=post)
