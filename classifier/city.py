"""A city's configuration: OPD per agency function, LAPOR! category per topic, and its gazetteer.

The classifier predicts government *functions* every city has; this file turns them into one city's
real agencies. Kota Kupang ships as the default; another city is another YAML file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CITY_FILE = Path(__file__).parent / "cities" / "kota_kupang.yaml"


@dataclass(frozen=True)
class Opd:
    """A city agency (organisasi perangkat daerah) and its LAPOR! instansi."""

    function: str
    name: str
    lapor_instansi: str


@dataclass(frozen=True)
class Location:
    """A place named in a text: always a kecamatan, a kelurahan when one was named."""

    kecamatan: str
    kelurahan: str | None
    matched: str


@dataclass(frozen=True)
class City:
    """One city's mapping from labels to agencies and places."""

    name: str
    agencies: dict[str, dict[str, str]]
    topics: dict[str, dict[str, str]]
    kelurahan_to_kecamatan: dict[str, str]
    kecamatan: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict)
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _kelurahan_by_lower: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _kecamatan_by_lower: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def opd_for(self, agency: str | None, *, kecamatan: str | None = None) -> Opd:
        """The OPD for an agency function (KEWILAYAHAN goes to the named kecamatan when known)."""
        entry = self.agencies.get(agency or "") or self.agencies.get("LAINNYA") or {}
        name, instansi = entry.get("name", self.name), entry.get("lapor_instansi", self.name)
        if "{kecamatan}" in name or "{kecamatan}" in instansi:
            if kecamatan:
                name, instansi = name.format(kecamatan=kecamatan), instansi.format(kecamatan=kecamatan)
            else:
                name = instansi = entry.get("fallback", self.name)
        return Opd(function=agency or "LAINNYA", name=name, lapor_instansi=instansi)

    def category_for(self, topic: str | None) -> str:
        """The LAPOR! category for a topic label."""
        return self.topics.get(topic or "", {}).get("lapor_category") or self.topics.get("lainnya", {}).get(
            "lapor_category", "Lainnya"
        )

    def agency_for_topic(self, topic: str | None) -> str | None:
        """The agency function that usually acts on a topic."""
        return self.topics.get(topic or "", {}).get("agency")

    def find_location(self, text: str) -> Location | None:
        """The most specific place of this city named in ``text`` (kelurahan before kecamatan)."""
        if not text or self._pattern is None:
            return None
        best: Location | None = None
        for match in self._pattern.finditer(text.lower()):
            key = re.sub(r"\s+", " ", match.group(0))
            canonical = self.aliases.get(key, key)
            kelurahan = self._kelurahan_by_lower.get(canonical.lower())
            if kelurahan:
                return Location(self.kelurahan_to_kecamatan[kelurahan], kelurahan, match.group(0))
            kecamatan = self._kecamatan_by_lower.get(canonical.lower())
            if kecamatan and best is None:
                best = Location(kecamatan, None, match.group(0))
        return best


def _compile(names: list[str]) -> re.Pattern[str]:
    # Longest names first so "Oesapa Barat" wins over "Oesapa"; spaces match any whitespace.
    parts = [re.escape(n.lower()).replace(r"\ ", r"\s+") for n in sorted(set(names), key=len, reverse=True)]
    return re.compile(r"(?<![\w-])(?:" + "|".join(parts) + r")(?![\w-])")


def parse_city(data: dict[str, Any]) -> City:
    """Build a City from the parsed YAML mapping, checking its shape."""
    gazetteer: dict[str, list[str]] = data.get("gazetteer") or {}
    kel_to_kec = {kel: kec for kec, kels in gazetteer.items() for kel in kels}
    aliases = {k.lower(): v for k, v in (data.get("aliases") or {}).items()}
    unknown = [v for v in aliases.values() if v not in kel_to_kec and v not in gazetteer]
    if unknown:
        raise ValueError(f"city aliases point at unknown places: {unknown}")
    names = list(kel_to_kec) + list(gazetteer) + list(aliases)
    return City(
        name=str(data["name"]),
        agencies=dict(data.get("agencies") or {}),
        topics=dict(data.get("topics") or {}),
        kelurahan_to_kecamatan=kel_to_kec,
        kecamatan=tuple(gazetteer),
        aliases=aliases,
        _pattern=_compile(names) if names else None,
        _kelurahan_by_lower={k.lower(): k for k in kel_to_kec},
        _kecamatan_by_lower={k.lower(): k for k in gazetteer},
    )


@lru_cache(maxsize=8)
def load_city(path: Path | str = DEFAULT_CITY_FILE) -> City:
    """Load (once per path) a city file."""
    with open(path, encoding="utf-8") as fh:
        return parse_city(yaml.safe_load(fh))
