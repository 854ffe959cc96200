"""The append-only audit log: every action, with who did it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pipelines.models import AuditLog


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    object_type: str = "",
    object_id: object = "",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit entry in the caller's transaction (the caller commits)."""
    entry = AuditLog(
        actor=actor[:64],
        action=action[:64],
        object_type=object_type[:32],
        object_id=str(object_id)[:64],
        details=details or {},
    )
    session.add(entry)
    return entry
