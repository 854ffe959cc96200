"""Post shape features: length bins and opening/closing words, their explanation, their storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import clone

from classifier.normalize import NormalizedText
from classifier.pipeline import HeadConfig, build_head
from classifier.registry import TRUSTED_TYPES, LoadedModel
from classifier.shape import CHAR_BINS, MAX_CHARS, WORD_BINS, PostShape, edge_terms, length_bins

_TRAIN = [
    "jalan rusak parah di oebobo tolong diperbaiki",
    "jalan berlubang di alak tolong diperbaiki",
    "lampu jalan mati di maulafa",
    "terima kasih kang",
    "terima kasih pak wali",
]


def test_length_bins_count_words_of_the_post_as_written_without_handles() -> None:
    assert length_bins("") == (0, 0)
    assert length_bins("@pemkot @dbmp jalan rusak") == (0, 1)  # 2 words; 25 characters
    assert length_bins(" ".join(["kata"] * 12)) == (2, 2)  # 12 words, 59 characters
    assert length_bins("a " * 500) == (WORD_BINS - 1, CHAR_BINS - 1)  # both capped


def test_edge_terms_tag_the_first_and_last_words_and_skip_handles_and_markers() -> None:
    text = "xmention @pemkot jalan rusak parah di oebobo xurl"
    assert edge_terms(text, 2) == ["start1:jalan", "start2:rusak", "start:jalan", "start:rusak", "end:di", "end:oebobo"]
    assert edge_terms("xmention @pemkot", 3) == []
    assert edge_terms("jalan rusak", 0) == []


def test_transform_is_unit_edge_tfidf_then_two_length_one_hots() -> None:
    shape = PostShape(edge_words=1, min_df=2).fit(_TRAIN)
    names = list(shape.get_feature_names_out())
    # min_df 2: only terms of two or more training posts are kept
    assert [n for n in names if ":" in n and not n.startswith(("words", "chars"))] == [
        "end:diperbaiki", "start1:jalan", "start1:terima", "start:jalan", "start:terima"
    ]
    raw = "@pemkot jalan di kelapa lima rusak parah sudah sebulan, mohon segera diperbaiki pak"
    X = shape.transform([NormalizedText("xmention @pemkot jalan di kelapa lima rusak parah diperbaiki pak", raw)])
    assert X.shape == (1, len(names)) and X.dtype == np.float32
    row = dict(zip((names[j] for j in X.indices), X.data, strict=True))
    assert set(row) == {"start1:jalan", "start:jalan", "words:10-14", "chars:75-99"}  # 13 words, 82 characters
    assert row["start1:jalan"] ** 2 + row["start:jalan"] ** 2 == pytest.approx(1.0, rel=1e-5)
    assert row["words:10-14"] == row["chars:75-99"] == pytest.approx(1 / np.sqrt(2))
    # a plain string (no raw post attached) is measured as it is; huge text is capped, never slow
    assert shape.transform(["terima kasih"]).shape == (1, len(names))
    huge = shape.transform(["jalan " * 1_000_000])
    assert names[huge.indices[-1]] == "chars:175+" and MAX_CHARS > 175


def test_clone_and_skops_round_trip(tmp_path: Path) -> None:
    shape = PostShape().fit(_TRAIN)
    assert clone(shape).get_params() == {"edge_words": 3, "min_df": 2}
    path = tmp_path / "shape.skops"
    sio.dump(shape, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) <= set(TRUSTED_TYPES)
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.transform(_TRAIN).toarray(), shape.transform(_TRAIN).toarray())


def test_explain_nets_edge_terms_into_their_word_and_names_length_bins_in_indonesian() -> None:
    texts = _TRAIN * 4
    labels = np.array(["keluhan", "keluhan", "keluhan", "bukan", "bukan"] * 4, dtype=object)
    config = HeadConfig(shape=True, shape_weight=1.0, calibration="none", min_df=1)
    pipe = build_head(config).fit(texts, labels)
    model = LoadedModel("t", {"relevance": pipe, "topic": pipe, "agency": pipe})
    text = "jalan rusak di oebobo tolong diperbaiki"
    terms: dict[str, float] = {}
    for term, weight in model.explain(text, top_n=50)["relevance"]:
        terms.setdefault(term, weight)  # words come first; a char n-gram may repeat a word's spelling
    features = pipe.named_steps["features"]
    X = features.transform(pipe.named_steps["normalize"].transform([text])).tocsr()
    names = features.get_feature_names_out()
    classes, coef = model._weights["relevance"]
    label = list(classes).index(pipe.predict([text])[0])
    contribution = dict(zip((str(names[j]) for j in X.indices), X.data * coef[label, X.indices], strict=True))
    # "jalan" opens the post: its entry is the word's own weight plus both of its edge terms
    expected = contribution["word__jalan"] + contribution["shape__start1:jalan"] + contribution["shape__start:jalan"]
    assert terms["jalan"] == pytest.approx(expected, abs=1e-4)
    assert not any(term.startswith(("start", "end", "shape", "words:")) for term in terms)
    lengths = {k: v for k, v in contribution.items() if k.startswith("shape__words:") or k.startswith("shape__chars:")}
    shown = {t for t in terms if t.startswith("[panjang ")}
    assert shown == {
        f"[panjang {k.partition(':')[2]} {'kata' if 'words' in k else 'karakter'}]" for k, v in lengths.items() if v > 0
    }


def test_the_shipped_relevance_head_reads_the_shape_of_the_post(shipped_model: LoadedModel) -> None:
    blocks = dict(shipped_model.heads["relevance"].named_steps["features"].transformer_list)
    assert isinstance(blocks["shape"], PostShape)
    thanks = "terima kasih kang"
    assert shipped_model.predict([thanks])[0].relevance == "bukan"
    # a three-word post: its length pushes it away from a complaint, and the review screen says so
    assert "[panjang 0-4 kata]" in dict(shipped_model.explain(thanks, top_n=10)["relevance"])
