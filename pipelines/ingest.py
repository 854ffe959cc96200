"""Store what the harvester collected: once per (platform, external id), edits as versions.

Safe with concurrent workers on SQLite and PostgreSQL: new posts go in with
``INSERT ... ON CONFLICT (platform, external_id) DO NOTHING RETURNING``, so a post another worker
stored a moment ago is simply treated as already stored; edits bump ``version`` with a
compare-and-set (``WHERE version = :seen``) so two workers never write the same version twice.
Malformed payloads go to the quarantine table whole, with the reason; the batch goes on.
Runs in the caller's transaction (the caller commits, then moves the checkpoint).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from harvester.types import QuarantinedItem, RawItem
from jaring.db import membership_conditions
from jaring.settings import Settings, get_settings
from pipelines import dedupe
from pipelines.models import Post, PostVersion, Quarantine

MAX_RAW_BYTES = 1_000_000  # a single item's payload beyond this is quarantined, not stored as a post
MAX_QUARANTINE_BYTES = 5_000_000


@dataclass
class IngestResult:
    """What one batch did to the store."""

    new_post_ids: list[int] = field(default_factory=list)
    updated_post_ids: list[int] = field(default_factory=list)
    seen_again: int = 0  # already stored, unchanged
    near_duplicates: int = 0  # new posts grouped with an earlier one
    quarantine_ids: list[int] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return len(self.quarantine_ids)

    def merge(self, other: IngestResult) -> None:
        """Add ``other``'s counts to this one."""
        self.new_post_ids += other.new_post_ids
        self.updated_post_ids += other.updated_post_ids
        self.seen_again += other.seen_again
        self.near_duplicates += other.near_duplicates
        self.quarantine_ids += other.quarantine_ids


POSTS: sa.Table = Post.__table__  # type: ignore[assignment]


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(POSTS)
    if dialect == "sqlite":
        return sqlite.insert(POSTS)
    raise NotImplementedError(f"ingest supports SQLite and PostgreSQL, not {dialect}")


def _json_dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    """``value`` if it is plain JSON already (the common case), else a JSON-safe copy."""
    if _plain(value):
        return value
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if depth > 30:
        return False
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def quarantine(
    *, session: Session, source_key: str, items: Sequence[QuarantinedItem], run_id: int | None = None
) -> list[int]:
    """Store malformed payloads with their reason; returns the quarantine ids."""
    if not items:
        return []
    rows = [
        {
            "source_key": source_key[:64],
            "platform": item.platform[:16],
            "run_id": run_id,
            # NUL (PostgreSQL text refuses it) and lone surrogates (UTF-8 cannot encode them) are
            # kept visible as their JSON escapes.
            "reason": _escaped(item.reason)[:2000],
            "raw_body": _escaped(item.raw_body)[:MAX_QUARANTINE_BYTES],
            "created_at": datetime.now(UTC),
            "resolved": False,
        }
        for item in items
    ]
    result = session.execute(sa.insert(Quarantine).returning(Quarantine.id), rows)
    return [row[0] for row in result]


def ingest_posts(
    *,
    session: Session,
    source_key: str,
    items: Iterable[RawItem | QuarantinedItem],
    run_id: int | None = None,
    settings: Settings | None = None,
    detect_duplicates: bool = True,
) -> IngestResult:
    """Store a batch of collected items; returns new/updated ids and counts. Does not commit."""
    settings = settings or get_settings()
    result = IngestResult()
    bad: list[QuarantinedItem] = []
    latest: dict[tuple[str, str], RawItem] = {}
    for item in items:
        if isinstance(item, QuarantinedItem):
            bad.append(item)
            continue
        problem = _problem(item)
        if problem:
            bad.append(QuarantinedItem.of(item.platform or "", problem, item.raw))
            continue
        key = (item.platform, item.external_id)
        if key in latest:
            result.seen_again += 1
        latest[key] = item  # the last state seen in this batch wins
    result.quarantine_ids = quarantine(session=session, source_key=source_key, items=bad, run_id=run_id)
    if not latest:
        return result

    cap = settings.max_post_chars
    prepared = {key: _prepare(item, cap) for key, item in latest.items()}
    existing = _existing(session, set(latest) | _originals(latest.values()))

    # Sorted, so concurrent workers lock unique-index entries in the same order (no deadlocks on PostgreSQL).
    to_insert = sorted(key for key in latest if key not in existing)
    inserted: dict[tuple[str, str], int] = {}
    if to_insert:
        now = datetime.now(UTC)
        rows = [_row(latest[k], prepared[k], source_key, now, existing) for k in to_insert]
        for post_id, platform, external_id in _insert_new(session, rows):
            inserted[(platform, external_id)] = post_id
        lost_race = [k for k in to_insert if k not in inserted]
        if lost_race:  # another worker stored them between our SELECT and INSERT
            existing.update(_existing(session, set(lost_race)))

    # Link retweets/quotes whose original arrived in this same batch.
    links = []
    for key, post_id in inserted.items():
        original = latest[key].original_external_id
        if original and (key[0], original) not in existing and (key[0], original) in inserted:
            links.append({"id": post_id, "original_post_id": inserted[(key[0], original)]})
    if links:
        session.connection().execute(
            sa.update(POSTS)
            .where(POSTS.c.id == sa.bindparam("b_id"))
            .values(original_post_id=sa.bindparam("b_orig")),
            [{"b_id": link["id"], "b_orig": link["original_post_id"]} for link in links],
        )

    result.new_post_ids = sorted(inserted.values())
    for key, item in sorted(latest.items(), key=lambda kv: existing.get(kv[0], {}).get("id", 0)):
        if key in inserted:
            continue
        row = existing.get(key)
        if row is None:
            continue
        text, _, _, chash, sh = prepared[key]
        if text == row["text"]:
            result.seen_again += 1
            continue
        if _record_edit(session, row, item, text, chash, sh):
            result.updated_post_ids.append(row["id"])
        else:
            result.seen_again += 1

    if detect_duplicates and inserted:
        fingerprints = [
            dedupe.Fingerprint(post_id, key[0], prepared[key][3], prepared[key][1], prepared[key][2])
            for key, post_id in sorted(inserted.items(), key=lambda kv: kv[1])
        ]
        result.near_duplicates = dedupe.annotate(session=session, posts=fingerprints)
    return result


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> Iterable[tuple[int, str, str]]:
    """INSERT ... ON CONFLICT (platform, external_id) DO NOTHING RETURNING id, platform, external_id."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # One short statement over column arrays (unnest): no 10,000-placeholder SQL text to build and parse.
        params = {
            c: [json.dumps(r[c], ensure_ascii=False) for r in rows]
            if c in _JSON_COLUMNS
            else [r[c] for r in rows]
            for c in _UNNEST_COLUMNS
        }
        return conn.execute(_UNNEST_INSERT, params).all()
    # SQLite: one cached statement, executed for many rows (SQLAlchemy batches it as multi-row VALUES).
    stmt = (
        _insert(session)
        .on_conflict_do_nothing(index_elements=["platform", "external_id"])
        .returning(POSTS.c.id, POSTS.c.platform, POSTS.c.external_id)
    )
    return conn.execute(stmt, rows).all()


def _array_type(column: sa.Column[Any]) -> Any:
    if isinstance(column.type, sa.JSON):
        return postgresql.ARRAY(sa.Text)  # JSON travels as text and is cast to jsonb in the SELECT
    return postgresql.ARRAY(column.type)


_UNNEST_COLUMNS = [
    c.name
    for c in POSTS.columns
    if c.name not in ("id",)
    and c.name
    in {
        "platform",
        "external_id",
        "kind",
        "source_key",
        "author_id",
        "author_handle",
        "author_name",
        "text",
        "lang",
        "url",
        "media",
        "parent_external_id",
        "thread_external_id",
        "referenced",
        "original_post_id",
        "created_at",
        "harvested_at",
        "updated_at",
        "version",
        "raw",
        "content_hash",
        "simhash",
        "simhash_band",
        "dup_group_id",
        "duplicate_of_id",
        "duplicate_reason",
        "status",
        "priority",
    }
]
_JSON_COLUMNS = {c for c in _UNNEST_COLUMNS if isinstance(POSTS.c[c].type, sa.JSON)}
# Built once from the table's own column names (no outside input); values are bound parameters.
_UNNEST_INSERT = sa.text(
    f"INSERT INTO posts ({', '.join(_UNNEST_COLUMNS)}) "  # noqa: S608
    f"SELECT {', '.join(c + '::jsonb' if c in _JSON_COLUMNS else c for c in _UNNEST_COLUMNS)} "
    f"FROM unnest({', '.join(':' + c for c in _UNNEST_COLUMNS)}) AS t({', '.join(_UNNEST_COLUMNS)}) "
    "ON CONFLICT (platform, external_id) DO NOTHING RETURNING id, platform, external_id"
).bindparams(*[sa.bindparam(c, type_=_array_type(POSTS.c[c])) for c in _UNNEST_COLUMNS])


def _problem(item: RawItem) -> str:
    if not item.platform or len(item.platform) > 16:
        return "item has no valid platform"
    if (
        not item.external_id
        or len(item.external_id) > 128
        or "\x00" in item.external_id
        or _SURROGATE.search(item.external_id)
    ):
        return "item has no valid external id (1-128 characters)"
    if not isinstance(item.text, str):
        return f"item {item.external_id} has no text"
    try:
        dumped = _json_dump(item.raw)
    except (TypeError, ValueError):
        return f"item {item.external_id} has a payload that is not JSON"
    except RecursionError:
        return f"item {item.external_id} has a payload nested too deeply"
    if len(dumped) > MAX_RAW_BYTES:
        return f"item {item.external_id} payload is {len(dumped)} bytes (limit {MAX_RAW_BYTES})"
    if "\\u0000" in dumped or _SURROGATE.search(dumped):
        # PostgreSQL's jsonb refuses NUL characters, and half an emoji ("\ud83d" in the JSON) cannot be
        # encoded as UTF-8 by either database: clean the stored payload.
        item.raw = _storable(item.raw)
    # ... and its text columns too: from every other field that reaches one (a NUL in an author's
    # name or a media URL made the batch's INSERT fail, on every run, with the good posts beside it).
    for name in _TEXT_FIELDS:
        value = getattr(item, name)
        if isinstance(value, str) and ("\x00" in value or _SURROGATE.search(value)):
            setattr(item, name, _storable(value))
    item.media = _storable(item.media)
    item.referenced = _storable(item.referenced)
    return ""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """``value`` with NUL characters dropped and lone surrogates replaced (U+FFFD), keys included."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(str(k)): _storable(v) for k, v in value.items()}
    return value


def _escaped(text: str) -> str:
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text.replace("\x00", "\\u0000"))


_TEXT_FIELDS = (
    "text",
    "kind",
    "author_id",
    "author_handle",
    "author_name",
    "lang",
    "url",
    "parent_external_id",
    "thread_external_id",
    "original_external_id",
)


def _prepare(item: RawItem, cap: int) -> tuple[str, str, dedupe.TextFingerprint, str, int | None]:
    text = item.text.replace("\x00", "")[:cap]
    norm = dedupe.normalise(text)
    fp = dedupe.fingerprint(norm)
    return text, norm, fp, dedupe.content_hash(norm), fp.simhash


def _originals(items: Iterable[RawItem]) -> set[tuple[str, str]]:
    return {(i.platform, i.original_external_id) for i in items if i.original_external_id}


def _existing(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Already stored posts among ``keys``: id, text and version (the raw payload is read only on edit)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    by_platform: dict[str, list[str]] = {}
    for platform, external_id in keys:
        by_platform.setdefault(platform, []).append(external_id)
    conn = session.connection()
    for platform, ids in by_platform.items():
        for condition in membership_conditions(conn, POSTS.c.external_id, ids, sa.String()):
            rows = conn.execute(
                sa.select(POSTS.c.id, POSTS.c.external_id, POSTS.c.text, POSTS.c.version).where(
                    POSTS.c.platform == platform, condition
                )
            )
            for post_id, external_id, text, version in rows:
                found[(platform, external_id)] = {"id": post_id, "text": text, "version": version}
    return found


def _row(
    item: RawItem,
    prepared: tuple[str, str, dedupe.TextFingerprint, str, int | None],
    source_key: str,
    now: datetime,
    existing: dict[tuple[str, str], dict[str, Any]],
) -> dict[str, Any]:
    text, _, _, chash, sh = prepared
    original = existing.get((item.platform, item.original_external_id)) if item.original_external_id else None
    return {
        "platform": item.platform,
        "external_id": item.external_id,
        "kind": item.kind[:32],
        "source_key": source_key[:64],
        "author_id": item.author_id[:128],
        "author_handle": item.author_handle[:200],
        "author_name": item.author_name[:200],
        "text": text,
        "lang": item.lang[:16],
        "url": item.url[:1000],
        "media": _jsonable(item.media[:50]),
        "parent_external_id": (item.parent_external_id or None) and item.parent_external_id[:128],
        "thread_external_id": (item.thread_external_id or None) and item.thread_external_id[:128],
        "referenced": _jsonable(item.referenced[:20]),
        "original_post_id": original["id"] if original else None,
        "created_at": item.created_at,
        "harvested_at": now,
        "updated_at": now,
        "version": 1,
        "raw": _jsonable(item.raw),
        "content_hash": chash,
        "simhash": sh,
        "simhash_band": (sh >> 48) if sh is not None else None,  # top 16 bits: a coarse bucket for browsing
        "dup_group_id": None,
        "duplicate_of_id": None,
        "duplicate_reason": "",
        "status": "new",
        "priority": 0.0,
    }


def _record_edit(
    session: Session, row: dict[str, Any], item: RawItem, text: str, chash: str, sh: int | None
) -> bool:
    """Keep the old text as a version and store the new one; False if another worker got there first."""
    now = datetime.now(UTC)
    old_raw = session.scalar(sa.select(Post.raw).where(Post.id == row["id"]))
    updated = session.execute(
        sa.update(Post)
        .where(Post.id == row["id"], Post.version == row["version"])
        .values(
            text=text,
            raw=_jsonable(item.raw),
            version=row["version"] + 1,
            updated_at=now,
            content_hash=chash,
            simhash=sh,
        )
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        sa.insert(PostVersion).values(
            post_id=row["id"], version=row["version"], text=row["text"], raw=old_raw or {}, seen_at=now
        )
    )
    return True
