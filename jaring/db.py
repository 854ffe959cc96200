"""Database engine, sessions and the declarative base shared by every table.

The same code runs on SQLite (embedded default, one file) and PostgreSQL (production).
SQLite gets WAL mode and a busy timeout so a web app, a worker and beat can share one file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
    func,
    literal,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeEngine

from jaring.settings import get_settings

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    """Declarative base for every Jaring table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: the configured database)."""
    url = url or get_settings().database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
# Threads (web server, stand-ins, thread-pool workers) may ask for the engine at the same moment.
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """The process-wide engine for the configured database (created once, thread-safe)."""
    global _engine, _session_factory
    with _engine_lock:
        if _engine is None:
            _engine = make_engine()
            _session_factory = sessionmaker(bind=_engine, expire_on_commit=False)
        return _engine


def reset_engine() -> None:
    """Dispose of the process-wide engine (tests and forked workers)."""
    global _engine, _session_factory
    with _engine_lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _session_factory = None


def session_factory() -> sessionmaker[Session]:
    """The sessionmaker bound to the process-wide engine."""
    get_engine()
    assert _session_factory is not None
    return _session_factory


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# SQLite caps bound parameters per statement; PostgreSQL takes the whole list as one array parameter.
SQLITE_IN_CHUNK = 500


def membership_conditions(
    conn: Connection, column: ColumnElement[Any], values: Sequence[Any], element_type: TypeEngine[Any]
) -> Iterator[ColumnElement[bool]]:
    """``column IN values`` as few conditions as the backend allows: one ``= ANY(array)`` on PostgreSQL,
    chunks of ``IN (...)`` on SQLite."""
    if not values:
        return
    if conn.dialect.name == "postgresql":
        yield column == func.any(literal(list(values), type_=postgresql.ARRAY(element_type)))
        return
    for start in range(0, len(values), SQLITE_IN_CHUNK):
        yield column.in_(values[start : start + SQLITE_IN_CHUNK])
