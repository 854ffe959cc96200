"""The forward queue's task helpers: the beat entries and a delivery request that never fails the caller."""

from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError

from jaring.settings import Settings
from pipelines.tasks import forward


def test_beat_schedule_sweeps_and_syncs_from_the_policy_file() -> None:
    entries = forward.beat_schedule(Settings())
    assert entries["forward-sweep"]["task"] == "jaring.forward.sweep"
    assert entries["forward-sweep"]["schedule"] == 30
    assert entries["forward-sync-statuses"]["task"] == "jaring.forward.sync_statuses"
    assert forward.deliver.name == "jaring.forward.deliver" and forward.sweep.name == "jaring.forward.sweep"


def test_schedule_delivery_never_raises_when_the_broker_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(forward.deliver, "apply_async", broker_down)
    assert forward.schedule_delivery(42) is False
    assert "sweep will pick it up" in caplog.text
    assert forward.schedule_delivery(None) is False
