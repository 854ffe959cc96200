"""Facebook Page and Instagram collectors over real HTTP against the Graph stand-in, facebook-sdk unpatched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipelines.harvest import run_source
from pipelines.models import AuditLog, Checkpoint, Post, PostVersion, Quarantine, SourceState
from standins.graph import GraphState, graph_time
from tests.harvester.conftest import IG_ID, PAGE_ID, HarvestEnv, Sleeper


def _ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def test_feed_tagged_and_comments_page_to_the_end(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, sleeper: Sleeper
) -> None:
    graph_state.empty_first_page = True  # Graph may answer an empty page that still has `next`
    own = graph_state.add_post(
        PAGE_ID, "Info pemadaman listrik besok", author=(PAGE_ID, "Pemkot"), created_at=_ago(300)
    )
    visitors = [
        graph_state.add_post(PAGE_ID, f"Jalan rusak di Liliba bagian {i}", created_at=_ago(200 - i))
        for i in range(23)
    ]
    tagged = graph_state.add_post(
        PAGE_ID, "Drainase mampet di Oesapa", tagged=True, author=("777", "Om Yos"), created_at=_ago(50)
    )
    comments = [
        graph_state.add_comment(
            own, f"Di Kelapa Lima listrik su mati dari pagi {i}", created_at=_ago(100 - i)
        )
        for i in range(14)
    ]
    reply = graph_state.add_comment(
        own, "Terima kasih infonya", author=(PAGE_ID, "Pemkot"), created_at=_ago(20)
    )
    summary = run_source(source_key="fb", sleep=sleeper)
    assert summary.status == "ok", summary.errors
    stored = set(session.scalars(sa.select(Post.external_id).where(Post.platform == "facebook")))
    assert stored == set(visitors) | {tagged} | set(comments)  # the page's own post and reply are context
    assert own not in stored and reply not in stored
    comment = session.scalars(sa.select(Post).where(Post.external_id == comments[0])).one()
    assert (
        comment.kind == "fb_comment"
        and comment.thread_external_id == own
        and comment.parent_external_id == own
    )
    cursors = dict(session.execute(sa.select(Checkpoint.cursor, Checkpoint.value)).all())
    assert set(cursors) == {f"feed:{PAGE_ID}", f"tagged:{PAGE_ID}", f"comments:{own}"} | {
        f"comments:{v}" for v in visitors
    }
    # The next run asks from the checkpoint minus the overlap and stores nothing twice.
    again = run_source(source_key="fb", sleep=sleeper)
    assert again.status == "ok" and again.new_post_ids == []
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == len(stored)


def test_edited_post_is_kept_as_a_version(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session
) -> None:
    post = graph_state.add_post(PAGE_ID, "Lampu jalan di TDM mati", created_at=_ago(5))
    assert run_source(source_key="fb").status == "ok"
    graph_state.edit(post, "Lampu jalan di TDM mati semua, sudah seminggu")
    second = run_source(source_key="fb")
    assert second.status == "ok" and len(second.updated_post_ids) == 1 and second.new_post_ids == []
    stored = session.scalars(sa.select(Post).where(Post.external_id == post)).one()
    assert stored.text == "Lampu jalan di TDM mati semua, sudah seminggu" and stored.version == 2
    versions = list(session.scalars(sa.select(PostVersion).where(PostVersion.post_id == stored.id)))
    assert [(v.version, v.text) for v in versions] == [(1, "Lampu jalan di TDM mati")]


def test_throttling_codes_back_off_and_transient_codes_retry(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, sleeper: Sleeper
) -> None:
    for i in range(12):
        graph_state.add_post(PAGE_ID, f"Sampah di Oeba belum diangkut hari {i}", created_at=_ago(30 - i))
    graph_state.throttle_minutes = 0
    graph_state.faults.at_request = {1: "2", 2: "1", 3: "17", 5: "613"}
    summary = run_source(source_key="fb", sleep=sleeper)
    assert summary.status == "ok" and len(summary.new_post_ids) == 12
    assert sleeper.calls == [1.0, 2.0, 60.0, 60.0]  # 1/2: retry backoff; 17/613: throttle backoff


def test_long_throttle_ends_the_run_and_resumes_later(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, sleeper: Sleeper
) -> None:
    posts = [
        graph_state.add_post(PAGE_ID, f"Air PDAM di Oepura mati hari {i}", created_at=_ago(60 - i))
        for i in range(25)
    ]
    graph_state.throttle_minutes = 30  # x-business-use-case-usage: estimated_time_to_regain_access
    graph_state.faults.at_request = {2: "4"}
    first = run_source(source_key="fb", sleep=sleeper)
    assert first.status == "partial" and sleeper.calls == []
    state = session.get(SourceState, "fb")
    assert state is not None and state.health == "backoff"
    backoff = state.backoff_until if state.backoff_until.tzinfo else state.backoff_until.replace(tzinfo=UTC)
    assert timedelta(minutes=29) < backoff - datetime.now(UTC) <= timedelta(minutes=30)
    assert session.scalar(sa.select(sa.func.count()).select_from(Checkpoint)) == 0
    second = run_source(source_key="fb", sleep=sleeper, force=True)
    assert second.status == "ok"
    stored = list(session.scalars(sa.select(Post.external_id)))
    assert sorted(stored) == sorted(posts)


def test_expired_token_stops_the_source_and_alerts_an_admin(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session
) -> None:
    graph_state.add_post(PAGE_ID, "Jalan rusak", created_at=_ago(5))
    graph_state.expired_tokens.add("graph-test-token")
    summary = run_source(source_key="fb")
    assert summary.status == "failed"
    state = session.get(SourceState, "fb")
    assert state is not None and state.health == "stopped" and "code 190" in state.last_error
    alert = session.scalars(sa.select(AuditLog).where(AuditLog.action == "harvest.source_stopped")).one()
    assert alert.object_id == "fb" and "190" in alert.details["reason"]
    # A stopped source is not called again until an admin re-enables it.
    before = graph_state.faults.requests
    graph_state.expired_tokens.clear()
    assert run_source(source_key="fb").status == "stopped"
    assert graph_state.faults.requests == before


def test_malformed_graph_items_are_quarantined(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session
) -> None:
    graph_state.add_post(PAGE_ID, "Jalan di Naikoten berlubang", created_at=_ago(10))
    graph_state.add_raw(f"feed:{PAGE_ID}", {"id": "bad_1", "message": "no time"}, created_at=_ago(9))
    graph_state.add_raw(
        f"feed:{PAGE_ID}",
        {"message": "no id", "created_time": "2026-01-01T00:00:00+0000"},
        created_at=_ago(8),
    )
    summary = run_source(source_key="fb")
    assert summary.status == "ok" and summary.quarantined == 2 and len(summary.new_post_ids) == 1
    reasons = set(session.scalars(sa.select(Quarantine.reason)))
    assert reasons == {"post bad_1 has no readable created_time", "post has no id"}


def test_instagram_tags_and_comments_on_own_media(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session
) -> None:
    tagged = [
        graph_state.add_ig_media(
            IG_ID, f"Banjir lagi di Fatululi #{i} @pemkot.kupang", created_at=_ago(90 - i)
        )
        for i in range(12)
    ]
    own = graph_state.add_ig_media(IG_ID, "Kegiatan bersih pantai", tagged=False, created_at=_ago(200))
    comments = [
        graph_state.add_ig_comment(
            own, f"Pak, sampah di Pasir Panjang belum diangkut {i}", created_at=_ago(60 - i)
        )
        for i in range(7)
    ]
    reply = graph_state.add_ig_comment(
        own, "Kami teruskan ke DLHK", username="pemkot.kupang", parent_id=comments[0], created_at=_ago(10)
    )
    citizen_reply = graph_state.add_ig_comment(
        own, "Sudah dua minggu pak", parent_id=comments[0], created_at=_ago(5)
    )
    summary = run_source(source_key="ig")
    assert summary.status == "ok", summary.errors
    stored = set(session.scalars(sa.select(Post.external_id).where(Post.platform == "instagram")))
    assert stored == set(tagged) | set(comments) | {citizen_reply}
    assert reply not in stored
    nested = session.scalars(sa.select(Post).where(Post.external_id == citizen_reply)).one()
    assert nested.parent_external_id == comments[0] and nested.thread_external_id == own
    assert run_source(source_key="ig").new_post_ids == []


def test_old_comment_cursors_are_pruned(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session
) -> None:
    from pipelines.harvest import save_checkpoint

    old = datetime.now(UTC) - timedelta(days=30)
    save_checkpoint(
        session=session, source_key="fb", cursor="comments:1_2", value="2026-01-01T00:00:00+0000", now=old
    )
    save_checkpoint(
        session=session, source_key="fb", cursor="feed:x", value="2026-01-01T00:00:00+0000", now=old
    )
    session.commit()
    assert run_source(source_key="fb").status == "ok"
    cursors = set(session.scalars(sa.select(Checkpoint.cursor)))
    assert "comments:1_2" not in cursors and "feed:x" in cursors


def test_graph_items_of_an_unexpected_shape_are_quarantined_not_a_crash(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, sleeper: Sleeper
) -> None:
    good = graph_state.add_post(PAGE_ID, "Jalan di Naikoten berlubang", created_at=_ago(10))
    base = {"message": "Lampu mati", "created_time": graph_time(_ago(9))}
    graph_state.add_raw(f"feed:{PAGE_ID}", {"id": "1_901", **base, "attachments": {"data": 5}})
    graph_state.add_raw(
        f"feed:{PAGE_ID}", {"id": "1_902", **base, "attachments": {"data": [{"media": {"image": "x"}}]}}
    )
    summary = run_source(source_key="fb", sleep=sleeper)
    assert summary.status == "ok", summary.errors
    assert list(session.scalars(sa.select(Post.external_id))) == [good]
    rows = {r.reason: r.raw_body for r in session.scalars(sa.select(Quarantine))}
    assert len(rows) == 2 and all(reason.startswith("post 1_90") for reason in rows)
    assert any('"data": 5' in body for body in rows.values())


def test_instagram_comment_with_a_malformed_replies_list_is_kept(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, sleeper: Sleeper
) -> None:
    own = graph_state.add_ig_media(IG_ID, "Kegiatan bersih pantai", tagged=False, created_at=_ago(200))
    stamp = graph_time(_ago(9))
    graph_state.add_raw(
        f"comments:{own}", {"id": "18000000000000901", "text": "Sampah", "timestamp": stamp, "replies": {"data": None}}
    )
    graph_state.add_raw(
        f"comments:{own}", {"id": "18000000000000902", "text": "Got", "timestamp": stamp, "replies": {"data": 7}}
    )
    summary = run_source(source_key="ig", sleep=sleeper)
    assert summary.status == "ok", summary.errors
    stored = set(session.scalars(sa.select(Post.external_id)))
    assert stored == {"18000000000000901", "18000000000000902"}
    reasons = list(session.scalars(sa.select(Quarantine.reason)))
    assert reasons == ["comment 18000000000000902 has a malformed replies list"]


def test_nul_characters_anywhere_in_a_post_do_not_stop_the_harvest(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, sleeper: Sleeper
) -> None:
    good = graph_state.add_post(PAGE_ID, "Jalan di Naikoten berlubang", created_at=_ago(10))
    stamp = graph_time(_ago(9))
    graph_state.add_raw(
        f"feed:{PAGE_ID}",
        {
            "id": "1_903",
            "message": "Lampu\x00 mati",
            "created_time": stamp,
            "from": {"id": "9", "name": "Warga\x00Oebobo"},
            "attachments": {"data": [{"media_type": "photo", "url": "https://x.test/a\x00.jpg"}]},
        },
    )
    graph_state.add_raw(f"feed:{PAGE_ID}", {"id": "1_904\x00", "message": "tanpa waktu"}, created_at=_ago(8))
    summary = run_source(source_key="fb", sleep=sleeper)
    assert summary.status == "ok", summary.errors
    posts = {p.external_id: p for p in session.scalars(sa.select(Post))}
    assert set(posts) == {good, "1_903"}
    odd = posts["1_903"]
    assert (odd.text, odd.author_name) == ("Lampu mati", "WargaOebobo")
    assert odd.media == [{"type": "photo", "url": "https://x.test/a.jpg"}]
    row = session.scalars(sa.select(Quarantine)).one()
    assert row.reason == "post 1_904\\u0000 has no readable created_time" and "tanpa waktu" in row.raw_body


@pytest.mark.parametrize(("code", "health"), [("100", "backoff"), ("190", "stopped")])
def test_platform_error_text_is_stored_with_personal_data_masked(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, code: str, health: str
) -> None:
    # Platform error text can quote what was asked for; /sumber shows last_error to every admin.
    graph_state.add_post(PAGE_ID, "Jalan rusak", created_at=_ago(5))
    graph_state.error_messages[code] = (
        "(#100) Param q 'hubungi 081234567890 atau budi@example.com, NIK 5371012345670001' is invalid"
    )
    graph_state.faults.at_request = {1: code, 2: code}
    for _ in range(2):
        assert run_source(source_key="fb", force=True).status in ("failed", "partial")
        session.expire_all()
        state = session.get(SourceState, "fb")
        assert state is not None and state.health == health
        assert "081234567890" not in state.last_error and "budi@example.com" not in state.last_error
        assert "5371012345670001" not in state.last_error
        assert "0812****90" in state.last_error and "b***@example.com" in state.last_error
        assert "537101**********" in state.last_error and f"code {code}" in state.last_error
    alerts = list(session.scalars(sa.select(AuditLog)))
    if code == "190":
        # The same (masked) error on the next run is no new alert, and the alert is masked too.
        assert [a.action for a in alerts] == ["harvest.source_stopped"]
        reason = alerts[0].details["reason"]
        assert "0812****90" in reason and "081234567890" not in reason
    else:
        assert alerts == []


def test_a_repeated_paging_next_ends_the_stream_with_a_notice_and_keeps_what_was_stored(
    harvest_env: HarvestEnv, graph_state: GraphState, session: Session, sleeper: Sleeper
) -> None:
    posts = [
        graph_state.add_post(PAGE_ID, f"Lampu jalan di Oebobo mati nomor {i}", created_at=_ago(100 - i))
        for i in range(25)
    ]  # 10 per page
    graph_state.repeat_next = 50  # the second page's `next` leads to the second page, again and again
    summary = run_source(source_key="fb", sleep=sleeper)
    assert summary.status == "ok" and len(summary.new_post_ids) == 20
    feed_requests = [q for path, q in graph_state.request_log if path.endswith(f"/{PAGE_ID}/feed")]
    assert len(feed_requests) == 2  # the repeated cursor was not followed
    assert sorted(session.scalars(sa.select(Post.external_id))) == sorted(posts[5:])  # the newest 20
    gaps = [e for e in summary.errors if e.startswith("gap: ")]
    assert gaps == [
        f"gap: Graph repeated the paging cursor of {PAGE_ID}/feed; stopped there, later pages may be missing"
    ]
    cursors = dict(session.execute(sa.select(Checkpoint.cursor, Checkpoint.value)).all())
    assert cursors[f"feed:{PAGE_ID}"] == graph_state.nodes[posts[-1]].payload["created_time"]
