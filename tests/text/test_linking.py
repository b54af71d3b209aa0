"""Entity linking: normalisation, embedding merges guarded by type and context, the kg contract."""

from __future__ import annotations

import pandas as pd
import pytest

from text.linking import (
    ENTITY_COLUMNS,
    LINKED_MENTION_COLUMNS,
    LinkingConfig,
    link_entities,
    normalise_surface,
)


def mentions(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "text", "label", "confidence", "source"])


ITEM_TEXTS = pd.Series({
    "phone": "Apple iPhone 15 smartphone with a titanium frame",
    "laptop": "MacBook Air 13-inch laptop by Apple Inc.",
    "buds": "APPLE AirPods Pro wireless earbuds",
    "fruit": "Fresh apple (fruit), crisp and sweet, picked at the orchard",
    "bag": "Gala apples, 1 kg bag from the orchard",
    "paint1": "Wall paint, colour: sage green",
    "paint2": "Wall paint, color: sage green",
})

APPLE_ROWS = [
    ("phone", "Apple", "brand", 0.85, "ner"),
    ("laptop", "apple inc.", "brand", 0.8, "ner"),
    ("buds", "APPLE", "brand", 0.7, "llm-http:m"),
    # a grocery catalogue: the fruit, once with a qualifier and mislabelled as a brand
    ("fruit", "apple (fruit)", "brand", 0.6, "ner"),
    ("bag", "apples", "product_type", 0.75, "ner"),
    ("paint1", "colour", "topic", 0.5, "ner"),
    ("paint2", "color", "topic", 0.5, "ner"),
]


@pytest.mark.parametrize(
    ("surface", "etype", "key"),
    [
        ("Apple", "brand", "apple"),
        ("apple inc.", "brand", "apple"),
        ("APPLE", "brand", "apple"),
        ("apple (fruit)", "brand", "apple fruit"),
        ("Levi Strauss & Co.", "brand", "levi strauss"),
        ("Levi's", "brand", "levi"),
        ("The Beatles", "artist", "beatles"),
        ("Adidas", "brand", "adidas"),  # names are never "singularised"
        ("batteries", "product_type", "battery"),
        ("Movies", "topic", "movie"),
        ("dresses", "product_type", "dress"),
        ("Hip-Hop", "genre", "hip hop"),
        ("  <b>Москва</b> ", "city", "москва"),
        ("!!!", "topic", ""),
    ],
)
def test_normalise_surface(surface, etype, key):
    assert normalise_surface(surface, etype) == key


def test_apple_variants_merge_and_the_fruit_stays_apart(minilm):
    linked = link_entities(mentions(APPLE_ROWS), minilm, item_texts=ITEM_TEXTS)
    ids = dict(zip(linked.mentions["item_id"], linked.mentions["entity_id"]))
    assert ids["phone"] == ids["laptop"] == ids["buds"] == "brand:apple"
    assert ids["fruit"] != "brand:apple" and ids["bag"] == "product_type:apple"
    apple = linked.entities.set_index("entity_id").loc["brand:apple"]
    assert apple["name"] == "Apple" and apple["type"] == "brand"
    assert apple["aliases"] == ["APPLE", "apple inc."]
    # near-duplicates that normalisation alone cannot see merge by embedding (cosine 0.97)
    assert ids["paint1"] == ids["paint2"] == "topic:color"
    assert linked.entities.set_index("entity_id").loc["topic:color", "aliases"] == ["colour"]


def test_context_keeps_alike_names_apart_in_unlike_catalogue_corners(minilm):
    # "nyc" and "new york city" embed at 0.92: one entity when their items are alike ...
    rows = [("a", "NYC", "city", 0.8, "ner"), ("b", "New York City", "city", 0.8, "ner")]
    alike = pd.Series({"a": "Hotel room in NYC near Times Square", "b": "Hotel room in New York City, Midtown"})
    assert link_entities(mentions(rows), minilm, item_texts=alike).mentions["entity_id"].nunique() == 1
    # ... and kept apart when the context threshold says their items have nothing in common
    strict = LinkingConfig(context_threshold=0.99)
    assert link_entities(mentions(rows), minilm, strict, item_texts=alike).mentions["entity_id"].nunique() == 2


def test_without_an_encoder_only_equal_keys_merge():
    linked = link_entities(mentions(APPLE_ROWS))
    ids = dict(zip(linked.mentions["item_id"], linked.mentions["entity_id"]))
    assert ids["phone"] == ids["laptop"] == ids["buds"] == "brand:apple"
    assert ids["paint1"] != ids["paint2"]


def test_output_is_the_graph_builder_contract(minilm):
    from kg.builder import MENTION_COLUMNS as KG_MENTION_COLUMNS

    rows = APPLE_ROWS + [("phone", "Apple", "brand", 0.95, "llm-local:smol")]  # same entity twice
    linked = link_entities(mentions(rows), minilm, item_texts=ITEM_TEXTS)
    assert tuple(linked.mentions.columns) == LINKED_MENTION_COLUMNS == KG_MENTION_COLUMNS
    assert tuple(linked.entities.columns) == ENTITY_COLUMNS
    assert not linked.mentions.duplicated(["item_id", "entity_id"]).any()
    phone = linked.mentions.set_index("item_id").loc["phone"]
    assert phone["confidence"] == 0.95 and phone["source"] == "llm-local:smol+ner"
    assert set(linked.mentions["entity_id"]) == set(linked.entities["entity_id"])
    assert linked.mentions["entity_id"].str.match(r"^[a-z_]+:\S+$").all()


def test_linking_is_deterministic_and_order_free(minilm):
    a = link_entities(mentions(APPLE_ROWS), minilm, item_texts=ITEM_TEXTS)
    b = link_entities(mentions(APPLE_ROWS[::-1]), minilm, item_texts=ITEM_TEXTS)
    pd.testing.assert_frame_equal(a.mentions, b.mentions)
    pd.testing.assert_frame_equal(a.entities, b.entities)


def test_empty_and_bad_input():
    linked = link_entities(mentions([]))
    assert len(linked.mentions) == 0 and tuple(linked.mentions.columns) == LINKED_MENTION_COLUMNS
    assert len(linked.entities) == 0 and tuple(linked.entities.columns) == ENTITY_COLUMNS
    with pytest.raises(ValueError, match=r"lack column\(s\) \['label'\]"):
        link_entities(pd.DataFrame({"item_id": [], "text": [], "confidence": [], "source": []}))
