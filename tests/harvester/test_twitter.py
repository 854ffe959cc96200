"""X collector over real HTTP against the stand-in, with tweepy unpatched."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from pipelines.harvest import run_source
from pipelines.models import Checkpoint, HarvestRun, Post, SourceState
from standins.twitter import TwitterState
from tests.harvester.conftest import HarvestEnv, Sleeper


def _mention(state: TwitterState, n: int) -> list[str]:
    return [
        state.add_tweet(f"@PemkotKupang keluhan nomor {i}: jalan di Oebobo rusak", author=f"warga{i}")
        for i in range(n)
    ]


def test_mentions_paginate_across_many_pages_and_checkpoint(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session, sleeper: Sleeper
) -> None:
    ids = _mention(x_state, 57)
    summary = run_source(source_key="x-mentions", sleep=sleeper)
    assert summary.status == "ok"
    assert summary.pages == 6  # 10 per page
    assert len(summary.new_post_ids) == 57
    stored = set(session.scalars(sa.select(Post.external_id).where(Post.platform == "twitter")))
    assert stored == set(ids)
    checkpoint = session.scalar(sa.select(Checkpoint.value).where(Checkpoint.source_key == "x-mentions"))
    assert checkpoint == max(ids, key=int)
    # Incremental: the next run asks with since_id and finds only what is new.
    newer = _mention(x_state, 3)
    second = run_source(source_key="x-mentions", sleep=sleeper)
    assert second.status == "ok" and len(second.new_post_ids) == 3
    assert x_state.request_log[-1][1]["since_id"] == checkpoint
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 60
    assert set(newer) <= set(session.scalars(sa.select(Post.external_id)))
    run = session.scalars(sa.select(HarvestRun).order_by(HarvestRun.id)).first()
    assert run is not None and run.pages == 6 and run.new_count == 57 and run.status == "ok"


def test_expansions_are_stored_with_the_raw_payload(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    original = x_state.add_tweet(
        "Air PDAM di Namosain mati seminggu, tolong @PemkotKupang",
        author="bung_alak",
        media=[{"type": "photo", "url": "https://pbs.twimg.com/media/a.jpg"}],
        place={"id": "p1", "full_name": "Kupang, Indonesia", "country_code": "ID"},
    )
    rt = x_state.add_tweet(
        "RT @bung_alak: Air PDAM di Namosain mati seminggu, tolong @PemkotKupang",
        author="mama_penfui",
        referenced=[{"type": "retweeted", "id": original}],
    )
    assert run_source(source_key="x-mentions").status == "ok"
    posts = {p.external_id: p for p in session.scalars(sa.select(Post))}
    assert posts[original].author_handle == "bung_alak"
    assert posts[original].media == [{"type": "photo", "url": "https://pbs.twimg.com/media/a.jpg"}]
    assert posts[original].raw["place"]["full_name"] == "Kupang, Indonesia"
    assert posts[original].raw["tweet"]["id"] == original
    assert posts[rt].original_post_id == posts[original].id
    assert posts[rt].referenced == [{"type": "retweeted", "id": original}]
    # The retweet's text is the original's: grouped as a duplicate, not deleted.
    assert posts[rt].duplicate_of_id == posts[original].id
    assert posts[rt].dup_group_id == posts[original].id


def test_429_mid_run_then_resume_without_gap_or_duplicate(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session, sleeper: Sleeper
) -> None:
    ids = _mention(x_state, 45)
    x_state.faults.at_request = {3: "429"}  # third page answers 429 with x-rate-limit-reset = now + 900
    first = run_source(source_key="x-mentions", sleep=sleeper)
    assert first.status == "partial"
    assert sleeper.calls == []  # 15 minutes is longer than a run may sleep: no blocking
    assert session.scalar(sa.select(sa.func.count()).select_from(Checkpoint)) == 0
    stored_after_first = session.scalar(sa.select(sa.func.count()).select_from(Post))
    assert stored_after_first == 20
    state = session.get(SourceState, "x-mentions")
    assert state is not None and state.health == "backoff" and state.backoff_until is not None
    # Still in backoff: the next scheduled run does not call X at all.
    requests_before = x_state.faults.requests
    assert run_source(source_key="x-mentions", sleep=sleeper).status == "backoff"
    assert x_state.faults.requests == requests_before
    # After the window: resume from the old checkpoint; everything once.
    newer = _mention(x_state, 2)
    second = run_source(source_key="x-mentions", sleep=sleeper, force=True)
    assert second.status == "ok"
    stored = list(session.scalars(sa.select(Post.external_id)))
    assert sorted(stored) == sorted(ids + newer)
    assert len(stored) == len(set(stored))


def test_short_rate_limit_is_slept_through_with_injected_sleep(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session, sleeper: Sleeper
) -> None:
    x_state.rate_limit_window_seconds = 20
    _mention(x_state, 25)
    x_state.faults.at_request = {2: "429"}
    summary = run_source(source_key="x-mentions", sleep=sleeper)
    assert summary.status == "ok" and len(summary.new_post_ids) == 25
    assert len(sleeper.calls) == 1 and 15 <= sleeper.calls[0] <= 22
    run = session.get(HarvestRun, summary.run_id)
    assert run is not None and run.rate_limit_wait_seconds == sleeper.calls[0]


def test_5xx_is_retried_with_backoff(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session, sleeper: Sleeper
) -> None:
    _mention(x_state, 15)
    x_state.faults.at_request = {1: "503", 2: "500", 4: "html"}
    summary = run_source(source_key="x-mentions", sleep=sleeper)
    assert summary.status == "ok" and len(summary.new_post_ids) == 15
    assert sleeper.calls == [1.0, 2.0, 1.0]


def test_expired_token_marks_source_failing_with_a_readable_reason(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    _mention(x_state, 3)
    x_state.expired_tokens.add("x-test-token")
    summary = run_source(source_key="x-mentions")
    assert summary.status == "failed"
    state = session.get(SourceState, "x-mentions")
    assert state is not None and state.health == "failing"
    assert "HTTP 401" in state.last_error
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 0
    # Still failing on the next scheduled run: one admin alert, not one per run.
    assert run_source(source_key="x-mentions").status == "failed"
    from pipelines.models import AuditLog

    alerts = list(session.scalars(sa.select(AuditLog.action)))
    assert alerts == ["harvest.source_failing"]
    # A new token: the next run succeeds and the source is healthy again.
    x_state.expired_tokens.clear()
    assert run_source(source_key="x-mentions").status == "ok"
    session.expire_all()
    assert session.get(SourceState, "x-mentions").health == "ok"


def test_malformed_tweets_are_quarantined_and_the_run_goes_on(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    from pipelines.models import Quarantine

    _mention(x_state, 3)
    x_state.add_malformed({"id": "123", "author_id": "1"}, mentions="PemkotKupang")
    x_state.add_malformed({"text": "no id @PemkotKupang"}, mentions="PemkotKupang")
    _mention(x_state, 2)
    summary = run_source(source_key="x-mentions")
    assert summary.status == "ok" and summary.quarantined == 2 and len(summary.new_post_ids) == 5
    rows = list(session.scalars(sa.select(Quarantine).order_by(Quarantine.id)))
    assert {r.reason for r in rows} == {"tweet 123 has no text", "tweet has no valid id"}
    assert all(r.source_key == "x-mentions" and r.run_id == summary.run_id for r in rows)
    assert '"author_id": "1"' in rows[0].raw_body or '"author_id": "1"' in rows[1].raw_body


def test_tweets_of_an_unexpected_shape_are_quarantined_not_a_crash(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session, sleeper: Sleeper
) -> None:
    from pipelines.models import Quarantine

    good = _mention(x_state, 2)
    odd = [
        {"referenced_tweets": 5},
        {"attachments": {"media_keys": 5}},
        {"attachments": {"media_keys": [{"key": 1}]}},
    ]
    for i, shape in enumerate(odd):
        x_state.add_malformed({"id": f"12{i}", "text": "@PemkotKupang halo", **shape}, mentions="PemkotKupang")
    summary = run_source(source_key="x-mentions", sleep=sleeper)
    assert summary.status == "ok", summary.errors
    assert set(session.scalars(sa.select(Post.external_id))) == set(good)
    rows = list(session.scalars(sa.select(Quarantine).order_by(Quarantine.id)))
    assert sorted(r.reason.split(" has ")[0] for r in rows) == ["tweet 120", "tweet 121", "tweet 122"]
    assert all(r.reason.endswith(")") and '"text": "@PemkotKupang halo"' in r.raw_body for r in rows)


def test_recent_search_follows_next_token(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    hits = [
        x_state.add_tweet(f"Sampah di Oebobo menumpuk lagi hari ke-{i}", author=f"w{i}") for i in range(23)
    ]
    x_state.add_tweet("Pantai Lasiana indah sekali", author="turis")
    summary = run_source(source_key="x-search")
    assert summary.status == "ok" and summary.pages == 3
    assert set(session.scalars(sa.select(Post.external_id))) == set(hits)
    assert any("next_token" in params for _, params in x_state.request_log)


def test_collector_repr_does_not_show_the_bearer_token() -> None:
    from harvester.twitter import TwitterCollector

    collector = TwitterCollector(bearer_token="AAAA-secret-bearer", queries=["kupang"])
    assert "AAAA-secret-bearer" not in repr(collector) and "kupang" in repr(collector)


def test_a_repeated_next_token_ends_the_stream_with_a_notice_and_keeps_what_was_stored(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session, sleeper: Sleeper
) -> None:
    ids = _mention(x_state, 25)  # 10 per page
    x_state.repeat_next_token = 50  # the second page hands back the token that led to it, again and again
    summary = run_source(source_key="x-mentions", sleep=sleeper)
    assert summary.status == "ok" and summary.pages == 2 and len(summary.new_post_ids) == 20
    assert len(x_state.request_log) == 2  # the repeated token was not followed
    newest_twenty = sorted(ids, key=int, reverse=True)[:20]
    assert sorted(session.scalars(sa.select(Post.external_id))) == sorted(newest_twenty)
    [notice] = summary.errors
    assert notice.startswith("gap: mentions of @PemkotKupang: X repeated a pagination token")
    run = session.get(HarvestRun, summary.run_id)
    assert run is not None and run.errors == [notice]
    checkpoint = session.scalar(
        sa.select(Checkpoint.value).where(Checkpoint.cursor == "mentions:1700000000000000001")
    )
    assert checkpoint == max(ids, key=int)


def test_unknown_user_id_is_a_source_error_on_sumber_not_an_empty_success(
    harvest_env: HarvestEnv, x_state: TwitterState, session: Session
) -> None:
    from pipelines.harvest import source_status
    from pipelines.models import AuditLog
    from pipelines.sources import load_sources

    # X answers 200 with only an `errors` array (partial-error format, resource-not-found problem type).
    harvest_env.set(
        "x-mentions",
        accounts=[
            {"id": "1", "handle": "SalahKetik"},
            {"id": "1700000000000000001", "handle": "PemkotKupang"},
        ],
    )
    ids = _mention(x_state, 3)
    summary = run_source(source_key="x-mentions")
    assert summary.status == "failed"
    state = session.get(SourceState, "x-mentions")
    assert state is not None and state.health == "failing"
    assert state.last_error == (
        "mentions of @SalahKetik: X answered with errors only: "
        "Not Found Error: Could not find user with id: [1]. "
        "(https://api.twitter.com/2/problems/resource-not-found)"
    )
    # The account that exists is still harvested, and its checkpoint moves.
    assert sorted(session.scalars(sa.select(Post.external_id))) == sorted(ids)
    cursors = dict(session.execute(sa.select(Checkpoint.cursor, Checkpoint.value)).all())
    assert cursors == {"mentions:1700000000000000001": max(ids, key=int)}
    assert list(session.scalars(sa.select(AuditLog.action))) == ["harvest.source_failing"]
    [row] = [r for r in source_status(session=session, sources=load_sources()) if r["key"] == "x-mentions"]
    assert row["health"] == "failing" and "Could not find user with id: [1]" in row["last_error"]
