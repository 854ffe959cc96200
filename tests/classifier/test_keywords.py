"""Government-function keyword features: matching rules, a reference implementation, saving."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import clone

from classifier.keywords import MAX_CHARS, KeywordFeatures, load_keywords
from classifier.normalize import NormalizedText, TextNormalizer
from classifier.registry import TRUSTED_TYPES


def _row(features: KeywordFeatures, text: str) -> dict[str, int]:
    """function → raw keyword count for one text (the features are log(1 + count))."""
    values = features.transform([text]).toarray()[0]
    return {str(f): round(float(np.expm1(v))) for f, v in zip(features.functions_, values, strict=True) if v}


@pytest.fixture(scope="module")
def features() -> KeywordFeatures:
    return KeywordFeatures().fit([])


def test_every_function_of_the_agency_head_has_keywords() -> None:
    from classifier.labels import LABELS

    table = load_keywords("agency_keywords")
    # LAINNYA ("other") has no services of its own, so no keywords.
    assert set(table) == set(LABELS["agency"]) - {"LAINNYA"}
    assert all(len(words) >= 10 for words in table.values())


def test_an_unknown_keyword_file_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no keyword file 'nope' .*known: agency_keywords"):
        KeywordFeatures(lexicon="nope").fit([])
    with pytest.raises(ValueError, match="no keyword file"):
        load_keywords("../lexicons/agency_keywords")


def test_suffixed_forms_acronyms_and_punctuation(features: KeywordFeatures) -> None:
    assert _row(features, "Pajaknya naik terus, PBB 2024 belum turun") == {"PENDAPATAN": 2}
    assert _row(features, "KKN di dinas itu") == {}  # "kk" is an acronym: whole words only
    assert _row(features, "Gorong-gorong mampet, e-KTP hilang") == {"PUPR": 1, "DUKCAPIL": 1}
    assert _row(features, "TERJADI KEBAKARAN!!! Damkar belum datang") == {"BENCANA_DAMKAR": 2}


def test_each_function_counts_without_overlap_longest_first(features: KeywordFeatures) -> None:
    # "kepala desa" is one KEWILAYAHAN keyword, not also "desa".
    assert _row(features, "kepala desa tidak pernah ada") == {"KEWILAYAHAN": 1}
    # Functions are independent: "jalan desa" (PUPR) does not hide "desa" from KEWILAYAHAN.
    assert _row(features, "jalan desa rusak") == {"PUPR": 1, "KEWILAYAHAN": 1}


def _reference(text: str) -> dict[str, int]:
    """The rule as a regex per function (what the CV trial measured): slow, obviously right."""
    cleaned = re.sub(r"[^\w]+", " ", text[:MAX_CHARS].lower())
    counts = {}
    for function, words in load_keywords("agency_keywords").items():
        ordered = sorted(words, key=len, reverse=True)
        alternatives = [re.escape(w) if len(w) <= 3 else re.escape(w) + r"\w*" for w in ordered]
        found = len(re.findall(r"\b(?:" + "|".join(alternatives) + r")\b", cleaned))
        if found:
            counts[function] = found
    return counts


def test_matches_the_reference_on_real_looking_and_hostile_text(features: KeywordFeatures) -> None:
    texts = [
        "Jalan rusak berlubang di Oebobo, drainase mampet, sampah numpuk di TPS. Mohon PUPR dan DLH turun!",
        "Bantuan sosial PKH & BPNT tdk tepat sasaran; kepala desa dan RT diam. KTP/KK ditahan kelurahan.",
        "Air PDAM mati 3 hari, tagihan air tetap naik. Pajak PBB juga. Ke puskesmas pun antre.",
        "<script>alert('sekolah')</script> guru honorer PPPK belum digaji; tunjangan TPP ASN?",
        "pasar tradisional pasar pasarnya pedagang kaki lima ditertibkan satpol pp",
        "\x00\x01 binary \ufffd jalan\u200brusak ¯\\_(ツ)_/¯ 🚧🚧 izin IMB/PBG",
        "",
    ]
    for text in texts:
        assert _row(features, text) == _reference(text), text


def test_reads_the_raw_text_of_a_normalised_post(features: KeywordFeatures) -> None:
    [post] = TextNormalizer(stem=True, keep_raw=True).fit([]).transform(["Kebakaran di pasar, damkar telat"])
    assert isinstance(post, NormalizedText)
    assert str(post) != post.raw  # stemming changed the words
    assert _row(features, post) == {"BENCANA_DAMKAR": 2, "EKONOMI_UMKM": 1}


def test_huge_and_binary_input_is_capped_not_fatal(features: KeywordFeatures) -> None:
    huge = "pajak " * 500_000  # 3 MB
    assert _row(features, huge)["PENDAPATAN"] == MAX_CHARS // len("pajak ")
    assert _row(features, bytes(range(256)).decode("latin-1")) == {}


def test_matches_lists_the_words_found(features: KeywordFeatures) -> None:
    assert features.matches("Jalan rusak, jembatan putus, jalan rusak lagi") == {
        "PUPR": ["jalan rusak", "jembatan"]
    }


def test_follows_the_estimator_contract_and_saves_with_skops(tmp_path: Path) -> None:
    unfitted = KeywordFeatures()
    assert clone(unfitted).get_params() == {"lexicon": "agency_keywords"}
    assert not [k for k in vars(unfitted) if k.endswith("_")]
    fitted = unfitted.fit(["apa saja"])
    assert fitted is unfitted
    text = ["Sampah di TPS tidak diangkut, limbah pabrik mencemari sungai"]
    before = fitted.transform(text).toarray()
    path = tmp_path / "keywords.skops"
    sio.dump(fitted, path)
    assert "_built" not in fitted.__getstate__()  # the matcher is rebuilt, never saved
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) <= set(TRUSTED_TYPES)
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.transform(text).toarray(), before)
    assert list(loaded.get_feature_names_out()) == [f"keywords:{f}" for f in fitted.functions_]
