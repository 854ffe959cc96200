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


@pytest.mark.parametrize(
    "text",
    [
        "Le gouvernement a annoncé une nouvelle politique pour les transports publics dans la ville",
        "El gobierno anunció una nueva política para el transporte público de la ciudad",
        "Die Regierung hat eine neue Politik für den öffentlichen Verkehr in der Stadt angekündigt",
    ],
)
def test_other_languages_are_recognised(text: str) -> None:
    assert unusable_reason(text) == NOT_INDONESIAN


def test_indonesian_with_a_number_abbreviation_is_kept() -> None:
    assert unusable_reason("no meter PDAM jl purwakarta no 3 air tidak mengalir dari kemarin") == ""


@pytest.mark.parametrize(
    "text",
    [
        "这是中文文本",  # one CJK "word": too short for the word-based check
        "Дорога возле рынка разбита уже несколько недель",
        "الطريق بالقرب من السوق مكسور @pemkotkupang",
        "ถนนใกล้ตลาดพังมาหลายสัปดาห์แล้ว",
    ],
)
def test_text_in_another_script_is_not_indonesian(text: str) -> None:
    assert unusable_reason(text) == NOT_INDONESIAN


def test_indonesian_with_a_few_letters_of_another_script_is_kept() -> None:
    assert unusable_reason("Assalamualaikum السلام عليكم pak, jalan di depan masjid oebobo rusak parah") == ""
