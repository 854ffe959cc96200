"""`jaring demo --once` runs the whole path against the stand-ins, and a second run adds nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _demo_once(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JARING_")}
    env.update(JARING_DATA_DIR=str(data_dir), PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "jaring.cli", "demo", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_demo_once_harvests_classifies_forwards_and_repeats_nothing(tmp_path: Path) -> None:
    first = _demo_once(tmp_path / "data")
    assert first["harvested"] > 0
    assert first["classified"] == first["harvested"]
    assert first["forwarded"] >= 1
    assert len(first["lapor_tracking_ids"]) == first["forwarded"] == first["lapor_reports_in_standin"]
    assert first["queued_for_review"] > 0
    assert set(first["sources"].values()) == {"ok"}

    second = _demo_once(tmp_path / "data")
    assert second["harvested"] == 0 and second["updated"] == 0
    assert second["classified"] == 0
    assert second["forwarded"] == 0 and second["lapor_reports_in_standin"] == 0
    assert second["totals"] == first["totals"]
