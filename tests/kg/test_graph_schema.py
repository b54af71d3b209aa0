"""Schema names, query constants and the id vocabulary."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kg import cypher
from kg.cypher import Query
from kg.schema import EDGE_TYPES, NODE_TYPES, RELS, Label, RelType, Vocabulary

QUERIES = {name: q for name, q in vars(cypher).items() if isinstance(q, Query)}


def test_every_query_is_named_after_its_constant():
    assert QUERIES
    for name, query in QUERIES.items():
        assert query.name == name


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_carry_no_literal_values(name):
    # Values travel as $parameters; a quote in query text would mean a value was pasted in.
    text = QUERIES[name].text
    assert "'" not in text and '"' not in text
    # Batched writes unwind their parameters: node rows as maps, relationship rows as joined
    # columns split on the server (see kg.cypher._rels_head).
    if name.startswith(("MERGE_", "CREATE_")) and name.endswith("_NODES"):
        assert text.lstrip().startswith("UNWIND $rows AS row")
    # First builds (CREATE_) send internal node ids, refreshes (MERGE_) the nodes' own ids.
    if name.startswith("MERGE_") and name.endswith("_RELS"):
        assert text.lstrip().startswith("WITH split($src, $sep) AS src")
    if name.startswith("CREATE_") and name.endswith("_RELS"):
        assert text.lstrip().startswith("WITH toIntegerList(split($src, $sep)) AS src")
        assert "WHERE id(a) = src[g] AND $src_label IN labels(a) AND a.domain = $domain" in text
    if name.startswith(("MERGE_", "CREATE_")) and name.endswith("_RELS"):
        assert "UNWIND range(offsets[g], offsets[g + 1] - 1) AS j" in text


def test_tables_cover_every_label_and_type():
    assert set(cypher.MERGE_NODES) == set(Label)
    assert set(cypher.MERGE_RELS) == set(RelType) == set(RELS)
    assert set(cypher.COUNT_RELS) == set(RelType)
    assert set(NODE_TYPES) == set(Label)
    assert set(EDGE_TYPES.values()) == {
        ("user", "interacted", "item"), ("item", "mentions", "entity"),
        ("item", "in_category", "category"), ("user", "follows", "user")}


def test_labels_and_types_follow_the_naming_rules():
    for label in Label:
        assert re.fullmatch(r"[A-Z][a-zA-Z]+", label)
    for rel in RelType:
        assert re.fullmatch(r"[A-Z_]+", rel)


def test_vocabulary_maps_ids_both_ways():
    v = Vocabulary(["a", "b", "🎉", "it's"])
    assert len(v) == 4 and v.index_of("🎉") == 2 and v.index_of("zz") is None
    assert v.indices_of(["it's", "nope", "a"]).tolist() == [3, -1, 0]
    assert v.indices_of(np.array(["b"], dtype=object)).dtype == np.int64
    assert v.contains(["a", "x"]).tolist() == [True, False]
    assert v.id_of(1) == "b" and v.ids_of([3, 0]).tolist() == ["it's", "a"]
    assert "a" in v and "x" not in v
    assert v == Vocabulary(["a", "b", "🎉", "it's"]) and v != Vocabulary(["a"])
    with pytest.raises(IndexError):
        v.id_of(4)
    with pytest.raises(ValueError):
        v.ids[0] = "z"


def test_vocabulary_refuses_duplicates():
    with pytest.raises(ValueError, match="1 duplicated"):
        Vocabulary(["a", "b", "a"])


def test_empty_vocabulary():
    v = Vocabulary([])
    assert len(v) == 0 and v.indices_of(["a"]).tolist() == [-1]
