"""Text normalisation: lexicons, the Kupang overlay, marker tokens, stemming."""

from __future__ import annotations

from unittest import mock

import pytest

from classifier import stemmer as stemmer_module
from classifier.normalize import colloquial_lexicon, kupang_overlay, merged_lexicon, normalize_text
from classifier.stemmer import BoundedStemmer


def test_kupang_overlay_takes_precedence_over_the_colloquial_lexicon() -> None:
    assert colloquial_lexicon()["pi"] == "tapi"  # the published lexicon's (non-Kupang) reading
    assert kupang_overlay()["pi"] == "pergi"
    assert merged_lexicon()["pi"] == "pergi"
    assert normalize_text("beta pi pasar") == "saya pergi pasar"


def test_kupang_forms_from_the_readme_are_mapped() -> None:
    text = normalize_text("katong sonde bisa lewat, su rusak, jang lupa")
    assert text == "kita tidak bisa lewat sudah rusak jangan lupa"


def test_without_the_overlay_pi_is_read_as_tapi() -> None:
    assert normalize_text("beta pi pasar", kupang=False) == "beta tapi pasar"


def test_colloquial_slang_is_formalised() -> None:
    assert normalize_text("tlg yg di jln itu sdh rusak") == "tolong yang di jalan itu sudah rusak"


def test_urls_mentions_hashtags_emoji_become_features() -> None:
    text = normalize_text("RT @DisHub_Kupang: macet #Oebobo 😡 https://t.co/abc :(")
    assert text.split() == [
        "xrt", "xmention", "@dishub_kupang", "macet", "xhashtag", "oebobo", "xemoji", "xurl", "xsad",
    ]


@pytest.mark.parametrize(("post", "expected"), [
    ("lihat www.kupangkota.go.id", "lihat xurl"),
    ("kata dia rt @PemkotKupang", "kata dia xrt xmention @pemkotkupang"),
    ("mantap =]", "mantap xhappy"),
    ("mantap ^_^", "mantap xhappy"),
    ("sedih ;(", "sedih xsad"),
    ("sedih =/", "sedih xsad"),
    ("ok ⭐", "ok xemoji"),
    ("jalan2 rusak", "jalan jalan rusak"),
])
def test_every_marker_form_is_found_on_its_own(post: str, expected: str) -> None:
    # A substitution is skipped when its pattern's opening character is absent from the post; each
    # opener here is the only one in its post, so a missing one in that check fails its case.
    assert normalize_text(post) == expected


def test_repeated_letters_numbers_units_and_reduplication() -> None:
    assert normalize_text("parahhhh 10km jalan2") == "parah xnum xunitkm jalan jalan"
    assert normalize_text("parahhhh", repeats=False) == "parahhhh"


def test_stop_words_and_stemming_are_switches() -> None:
    assert normalize_text("perbaikan jalan yang rusak", stopwords=True, stem=True) == "baik jalan rusak"
    assert normalize_text("perbaikan jalan yang rusak") == "perbaikan jalan yang rusak"


def test_bounded_stemmer_never_sends_unknown_words_to_sastrawi() -> None:
    stemmer = BoundedStemmer()
    with mock.patch.object(stemmer_module, "_sastrawi", side_effect=AssertionError("Sastrawi called")):
        for word in ("oebobo", "sonde", "katong", "pohn", "xyzzyqwerty", "tapaleuk"):
            assert stemmer.stem(word) == word


def test_bounded_stemmer_stems_affixed_known_words_and_memoises() -> None:
    stemmer = BoundedStemmer()
    assert stemmer.stem("perbaikan") == "baik"
    assert stemmer.stem("ditertibkan") == "tertib"
    with mock.patch.object(stemmer_module, "_sastrawi", side_effect=AssertionError("not memoised")):
        assert stemmer.stem("perbaikan") == "baik"


@pytest.mark.parametrize("size", [2])
def test_bounded_stemmer_cache_is_bounded(size: int) -> None:
    stemmer = BoundedStemmer(max_entries=size)
    for word in ("satu", "dua", "tiga", "empat", "lima"):
        stemmer.stem(word)
    assert len(stemmer._cache) <= size


def test_question_and_exclamation_markers_are_a_switch() -> None:
    assert normalize_text("kapan diperbaiki??? parah!!!", punctuation=True) == "kapan diperbaiki xquestion parah xexclaim"
    assert normalize_text("kapan diperbaiki??? parah!!!") == "kapan diperbaiki parah"


def test_normalising_under_several_settings_at_once_matches_one_at_a_time() -> None:
    from classifier.normalize import TextNormalizer, normalize_many

    texts = ["RT @pemkot: Jalan2 rusak 10km!!! beta pi kantor sonde ada https://t.co/x", "", "perbaikan yg lama??"]
    settings = [TextNormalizer().get_params(), TextNormalizer(lexicon=False, numbers=False).get_params(),
                TextNormalizer(stem=True, stopwords=True, punctuation=True).get_params(),
                TextNormalizer(keep_handles=False, numbers=False).get_params()]
    together = normalize_many(texts, settings)
    for params, got in zip(settings, together, strict=True):
        assert got == TextNormalizer(**params).transform(texts)


def test_a_normalised_post_keeps_its_raw_text_through_pickle_and_copy() -> None:
    import copy
    import pickle

    from classifier.normalize import NormalizedText, TextNormalizer

    [post] = TextNormalizer(keep_raw=True).fit([]).transform(["Sonde ada air PDAM!!"])
    assert isinstance(post, NormalizedText)
    for clone in (pickle.loads(pickle.dumps(post)), copy.deepcopy(post), copy.copy(post)):
        assert isinstance(clone, NormalizedText)
        assert (str(clone), clone.raw) == (str(post), "Sonde ada air PDAM!!")
