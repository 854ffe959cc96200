"""Rules of the repository itself: sizes, no pickle, the labelled data is not republished."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def test_only_the_default_model_is_big_and_it_is_under_20_mb() -> None:
    current = (ROOT / "models" / "CURRENT").read_text().strip()
    default_model = ROOT / "models" / current / "model.skops"
    assert default_model.stat().st_size < 20 * MB
    big = [p.relative_to(ROOT) for p in _tracked_files() if p.stat().st_size > 5 * MB and p != default_model]
    assert big == []


def test_no_code_loads_pickle_or_joblib() -> None:
    pattern = re.compile(r"\b(pickle|joblib|dill|cloudpickle)\.(load|loads)\b|^\s*import (pickle|joblib)\b", re.M)
    offenders = [
        str(p.relative_to(ROOT))
        for p in _tracked_files()
        if p.suffix == ".py" and "tests" not in p.parts and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_labelled_data_is_not_copied_into_the_repo() -> None:
    names = {p.name for p in _tracked_files()}
    assert not names & {"tweets_bandung.csv", "lapor_reports.csv"}
    # No tracked file carries a run of rows from the LAPOR! export (its tracking ids are 7-digit numbers
    # followed by the dataset name).
    for path in _tracked_files():
        if path.suffix in (".csv", ".json", ".txt", ".py", ".md") and path.stat().st_size < 5 * MB:
            text = path.read_text(encoding="utf-8", errors="ignore")
            assert len(re.findall(r"\d{7},lapor-(kab-bandung|kota-samarinda)", text)) < 3, path
