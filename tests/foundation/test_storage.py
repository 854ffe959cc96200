"""Storage on both backends: the migrations build the schema the models describe, and constraints hold."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from jaring.migrate import alembic_config, downgrade, upgrade
from pipelines.models import AuditLog, Base, Post


def test_migrations_match_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_then_upgrade_round_trips(db_url: str) -> None:
    downgrade(db_url, "base")
    engine = sa.create_engine(db_url)
    assert "posts" not in sa.inspect(engine).get_table_names()
    upgrade(db_url)
    assert {"posts", "outbox", "audit_log", "checkpoints"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert alembic_config(db_url).get_main_option("script_location") == "pipelines:migrations"


def test_external_id_is_unique_per_platform(session: Session) -> None:
    session.add(Post(platform="twitter", external_id="1", text="a", raw={}))
    session.add(Post(platform="facebook", external_id="1", text="b", raw={}))
    session.commit()
    session.add(Post(platform="twitter", external_id="1", text="c", raw={}))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 2


def test_raw_payload_round_trips_unicode_and_nesting(session: Session) -> None:
    raw = {"text": "Jalan rusak di Oebobo 🚧", "nested": {"ids": [1, 2, 3]}, "quote": "\"'<b>"}
    session.add(Post(platform="instagram", external_id="x", text=raw["text"], raw=raw))
    session.commit()
    session.expire_all()
    assert session.scalars(sa.select(Post)).one().raw == raw


def test_audit_log_is_append_only(session: Session) -> None:
    session.add(AuditLog(actor="admin", action="login"))
    session.commit()
    with pytest.raises(sa.exc.DatabaseError):
        session.execute(sa.update(AuditLog).values(actor="someone-else"))
        session.commit()
    session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        session.execute(sa.delete(AuditLog))
        session.commit()
    session.rollback()
    assert session.scalars(sa.select(AuditLog.actor)).all() == ["admin"]
