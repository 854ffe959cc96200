"""Input the model must not pretend to understand."""

from __future__ import annotations

import pytest

from classifier.guard import BINARY, EMPTY, NOT_INDONESIAN, TOO_LONG, unusable_reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", EMPTY),
        ("   \n\t ", EMPTY),
        ("!!! ??? ...", EMPTY),
        ("\x00\x01\x02PNG\x00" * 20, BINARY),
        (b"bytes are not text", BINARY),
        ("a" * 1_000_000, TOO_LONG),
        ("The road near the market has been broken for weeks and nobody is fixing it", NOT_INDONESIAN),
        ("jalan di depan pasar oebobo rusak parah sudah berminggu-minggu", ""),
        ("@ridwankamil kang tlg itu lampu jln mati", ""),
        ("beta pung rumah son dapa air su tiga hari", ""),
    ],
)
def test_unusable_reason(text: object, reason: str) -> None:
    assert unusable_reason(text) == reason
