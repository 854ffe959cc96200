"""Ingest and near-duplicate grouping on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from harvester.types import QuarantinedItem, RawItem
from jaring import db as jaring_db
from pipelines import dedupe
from pipelines.ingest import ingest_posts
from pipelines.models import Post, PostVersion, Quarantine


def item(external_id: str, text: str, platform: str = "twitter", **kw: object) -> RawItem:
    return RawItem(
        platform=platform,
        external_id=external_id,
        kind="tweet",
        text=text,
        created_at=datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
        raw={"id": external_id, "text": text},
        **kw,
    )


def test_same_post_twice_is_stored_once_and_edit_becomes_version(session: Session) -> None:
    first = ingest_posts(
        session=session, source_key="s", items=[item("1", "Jalan rusak"), item("2", "Air mati")]
    )
    session.commit()
    assert len(first.new_post_ids) == 2
    again = ingest_posts(
        session=session, source_key="s", items=[item("1", "Jalan rusak"), item("2", "Air mati lagi")]
    )
    session.commit()
    assert again.new_post_ids == [] and again.seen_again == 1 and len(again.updated_post_ids) == 1
    post = session.scalars(sa.select(Post).where(Post.external_id == "2")).one()
    assert post.text == "Air mati lagi" and post.version == 2 and post.raw["text"] == "Air mati lagi"
    assert [(v.version, v.text) for v in session.scalars(sa.select(PostVersion))] == [(1, "Air mati")]
    # The same id on another platform is another post.
    other = ingest_posts(
        session=session, source_key="s", items=[item("1", "Jalan rusak", platform="facebook")]
    )
    assert len(other.new_post_ids) == 1


def test_quarantine_and_size_caps(session: Session, monkeypatch) -> None:
    monkeypatch.setenv("JARING_MAX_POST_CHARS", "50")
    from jaring.settings import reset_settings_cache

    reset_settings_cache()
    result = ingest_posts(
        session=session,
        source_key="s",
        items=[
            item("1", "x" * 500),
            item("", "no id"),
            QuarantinedItem.of("twitter", "tweet has no text", {"id": "9"}),
            item("3", "big", **{}),
        ][:3]
        + [
            RawItem(
                platform="twitter",
                external_id="4",
                kind="tweet",
                text="huge payload",
                created_at=None,
                raw={"blob": "y" * 1_100_000},
            )
        ],
    )
    session.commit()
    assert len(result.new_post_ids) == 1 and result.quarantined == 3
    assert len(session.scalars(sa.select(Post.text)).one()) == 50
    reasons = sorted(session.scalars(sa.select(Quarantine.reason)))
    assert reasons[0].startswith("item 4 payload is") and "no valid external id" in reasons[1]
    assert reasons[2] == "tweet has no text"


def test_concurrent_workers_store_each_post_once(configured_db: str) -> None:
    ids = [str(i) for i in range(300)]
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        order = ids[:]
        random.Random(seed).shuffle(order)
        try:
            factory = jaring_db.session_factory()
            for start in range(0, len(order), 50):
                with factory() as s:
                    ingest_posts(
                        session=s,
                        source_key="s",
                        items=[
                            item(i, f"keluhan nomor {i} tentang jalan di kelurahan {i}")
                            for i in order[start : start + 50]
                        ],
                    )
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    jaring_db.session_factory()  # create the engine once: get_engine() is not meant to race across threads
    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    factory = jaring_db.session_factory()
    with factory() as s:
        stored = list(s.scalars(sa.select(Post.external_id)))
    assert sorted(stored, key=int) == ids


def test_copy_pasted_complaint_is_grouped_across_platforms(session: Session) -> None:
    text = (
        "Jalan di depan SD Inpres Oebufu rusak parah, lubang besar, motor jatuh tiap hari. Tolong diperbaiki!"
    )
    result = ingest_posts(
        session=session,
        source_key="s",
        items=[
            item("t1", text),
            item("f1", text.upper() + " https://fb.me/x", platform="facebook"),
            item("i1", "@pemkot.kupang " + text + " min", platform="instagram"),
            item("t2", "Sampah di pasar Oeba menumpuk seminggu, bau busuk sampai ke rumah warga"),
            item("t3", "mantap"),
            item("t4", "mantap"),
        ],
    )
    session.commit()
    assert result.near_duplicates == 2
    posts = {p.external_id: p for p in session.scalars(sa.select(Post))}
    copies = [posts["t1"], posts["f1"], posts["i1"]]
    root = min(copies, key=lambda p: p.id)  # the first stored of the batch leads the group
    assert root.dup_group_id == root.id and root.duplicate_of_id is None
    assert all(p.dup_group_id == root.id and p.duplicate_of_id == root.id for p in copies if p is not root)
    assert posts["t1"].duplicate_reason == f"same text as post #{root.id}"  # upper-case + URL: same text
    assert "near-duplicate" in posts["i1"].duplicate_reason and "similar" in posts["i1"].duplicate_reason
    assert posts["t2"].dup_group_id is None
    assert posts["t3"].dup_group_id is None and posts["t4"].dup_group_id is None  # too short to judge
    assert dedupe.group_size(session=session, group_id=root.id) == 3
    # A later batch still finds the group (through the band index, not a scan).
    later = ingest_posts(session=session, source_key="s", items=[item("t9", text + "!!")])
    session.commit()
    assert later.near_duplicates == 1
    assert session.get(Post, later.new_post_ids[0]).dup_group_id == root.id


def test_lsh_buckets_find_similar_pairs_and_skip_unrelated_ones() -> None:
    rng = random.Random(7)
    words = [f"kata{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) for _ in range(600)]
    copies = [t + " tolong min" for t in texts[:100]] + [
        t.replace(t.split()[3], "diganti") for t in texts[100:200]
    ]
    sets = [dedupe.shingles(t) for t in texts + copies]
    buckets: dict[int, list[int]] = {}
    candidates = set()
    for i, s in enumerate(sets):
        for key in dedupe.band_keys(dedupe.minhash(s)):
            candidates.update((i, j) for j in buckets.get(key, []))
            buckets.setdefault(key, []).append(i)
    similar = {(i, j) for i in range(len(sets)) for j in range(i) if dedupe.jaccard(sets[i], sets[j]) >= 0.75}
    assert len(similar) >= 150
    assert similar <= candidates  # every similar pair meets in a bucket
    unrelated = {(i, j) for i, j in candidates if dedupe.jaccard(sets[i], sets[j]) < 0.3}
    assert len(unrelated) <= 2  # and unrelated posts (almost) never do, out of ~245,000 pairs


def test_nul_characters_do_not_poison_a_page(session: Session) -> None:
    bad = RawItem(
        platform="twitter",
        external_id="n1",
        kind="tweet",
        text="air\x00 mati di Oeba",
        created_at=None,
        raw={"text": "air\x00 mati", "nested": ["\x00"]},
    )
    result = ingest_posts(session=session, source_key="s", items=[bad, item("n2", "lampu mati")])
    session.commit()
    assert len(result.new_post_ids) == 2
    stored = session.scalars(sa.select(Post).where(Post.external_id == "n1")).one()
    assert stored.text == "air mati di Oeba" and stored.raw == {"text": "air mati", "nested": [""]}


def test_lone_surrogates_are_replaced_not_a_failed_batch(session: Session) -> None:
    # JSON may carry half an emoji ("\ud83d"): json.loads keeps it, and UTF-8 cannot encode it.
    cut = "emoji \ud83d putus"
    bad = item("2", cut, author_name="Warga \udc00", media=[{"type": "photo", "url": "https://x.test/\ud83d"}])
    bad.raw = {"id": "2", "text": cut}
    odd = QuarantinedItem(platform="twitter", reason="tweet \ud83d has no id", raw_body='{"text": "\ud83d"}')
    result = ingest_posts(
        session=session, source_key="s", items=[item("1", "Jalan rusak"), bad, odd, item("3\ud83d", "x")]
    )
    session.commit()
    assert len(result.new_post_ids) == 2 and result.quarantined == 2
    post = session.scalars(sa.select(Post).where(Post.external_id == "2")).one()
    assert (post.text, post.author_name) == ("emoji \ufffd putus", "Warga \ufffd")
    assert post.raw == {"id": "2", "text": "emoji \ufffd putus"}
    assert post.media == [{"type": "photo", "url": "https://x.test/\ufffd"}]
    row, by_id = session.scalars(sa.select(Quarantine).order_by(Quarantine.id))
    assert (row.reason, row.raw_body) == ("tweet \\ud83d has no id", '{"text": "\\ud83d"}')
    assert by_id.reason.startswith("item has no valid external id") and '"3\\ud83d"' in by_id.raw_body
