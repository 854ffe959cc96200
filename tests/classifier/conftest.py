"""Fixtures for the classifier tests: a tiny synthetic training set and the shipped model."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from classifier.registry import LoadedModel, load_current
from jaring.settings import REPO_ROOT

SHIPPED_MODELS = REPO_ROOT / "models"

_COMPLAINTS = {
    "infrastruktur": ["jalan rusak berlubang di {p}", "lampu jalan mati di {p} tolong diperbaiki", "trotoar {p} ancur"],
    "perhubungan": ["macet parah di {p} tiap pagi", "angkot ngetem sembarangan di {p}", "lampu merah {p} mati bikin macet"],
    "sampah": ["sampah numpuk di {p} bau banget", "tumpukan sampah {p} belum diangkut", "tps {p} penuh sampah"],
}
_NOT = ["selamat pagi kang semoga sehat {p}", "terima kasih atas undangannya di {p}", "mantap acara di {p} kemarin"]
_RESPONSES = ["sudah kami tindak lanjuti laporan di {p}", "petugas sudah menuju {p}", "perbaikan {p} selesai hari ini"]
_AGENCIES = {
    "PUPR": ["jalan desa {p} rusak parah mohon perbaikan aspal", "jembatan di {p} retak dan berbahaya"],
    "DUKCAPIL": ["ktp elektronik saya di {p} belum jadi", "akta kelahiran anak di {p} lama sekali prosesnya"],
    "SOSIAL": ["bantuan sosial di {p} tidak tepat sasaran", "warga miskin {p} tidak dapat bansos"],
}
_PLACES = ["oebobo", "kelapa lima", "maulafa", "alak", "kota raja", "kota lama", "naikoten", "fatululi"]


def write_tiny_data(folder: Path) -> Path:
    """A synthetic training folder shaped like the real one (a few rows per label)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "tweets_bandung.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "text", "relevance", "topic", "topics", "topic_detail", "location", "copies"])
        ids = itertools.count(1)
        for topic, templates in _COMPLAINTS.items():
            for template, place in itertools.product(templates, _PLACES):
                writer.writerow([next(ids), "2016-01-01T00:00:00", "@pemkot " + template.format(p=place),
                                 "keluhan", topic, topic, "", place, 1])
        for relevance, templates in (("bukan", _NOT), ("respon", _RESPONSES)):
            for template, place in itertools.product(templates, _PLACES):
                writer.writerow([next(ids), "2016-01-01T00:00:00", template.format(p=place), relevance, "", "", "", "", 2])
    with (folder / "lapor_reports.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tracking_id", "dataset", "created_at", "title", "body", "lapor_category_id", "lapor_category",
                         "report_type", "channel", "agency_raw", "status", "kecamatan", "kelurahan", "agency"])
        ids = itertools.count(1000)
        for agency, templates in _AGENCIES.items():
            for template, place in itertools.product(templates, _PLACES):
                body = template.format(p=place)
                writer.writerow([next(ids), "tiny", "", body[:30], body, "", "", "", "Website", agency, "", "", "", agency])
    return folder


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A small synthetic copy of the training folder layout."""
    return write_tiny_data(tmp_path / "training")


@pytest.fixture(scope="session")
def shipped_model() -> LoadedModel:
    """The default model committed in models/ (loaded once per test session)."""
    return load_current(SHIPPED_MODELS)
