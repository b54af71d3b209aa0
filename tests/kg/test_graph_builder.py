"""The pure half of the builder: dataset and mentions → rows, and the build stamp."""

from __future__ import annotations

import pandas as pd
import pytest
from contracts import T0, toy_dataset, toy_dataset_v2, toy_mentions

from kg.builder import build_rows, build_stamp, co_interactions, normalize_mentions
from kg.errors import SchemaError
from kg.schema import CO_INTERACTION_PARTNERS, Label, RelType


def test_rows_follow_from_the_dataset():
    data = toy_dataset()
    rows = build_rows(data, toy_mentions())
    assert rows.domain == "social"
    assert rows.nodes[Label.USER]["id"].tolist() == data.users["user_id"].tolist()
    assert sorted(rows.nodes[Label.CATEGORY]["id"]) == ["books", "cyberpunk", "romance", "scifi"]
    inter = rows.rels[RelType.INTERACTED]
    assert len(inter) == len(data.interactions) == 9
    # Whole unix seconds, as plain integers.
    assert inter["ts"].min() == T0 and inter["ts"].dtype.kind == "i"
    assert set(inter["event"]) == {"rate"}
    follows = rows.rels[RelType.FOLLOWS]
    assert follows[["src", "dst", "kind"]].values.tolist() == [["ana", "ben", "friend"],
                                                               ["cy", "ana", "follow"]]
    assert rows.expected_counts().edges["IN_CATEGORY"] == 7


def test_mentions_keep_the_best_row_per_pair_and_name_entities_by_it():
    m = normalize_mentions(toy_mentions(), toy_dataset())
    pair = m[(m.item_id == "i1") & (m.entity_id == "e:desert")]
    assert pair["confidence"].tolist() == [0.6] and pair["entity_name"].tolist() == ["desert"]
    rows = build_rows(toy_dataset(), toy_mentions())
    ents = rows.nodes[Label.ENTITY].set_index("id")
    assert ents.loc["e:desert", "name"] == "desert" and ents.loc["e:lem", "type"] == "person"


def test_mentions_in_any_order_give_the_same_rows_and_stamp():
    m = toy_mentions()
    shuffled = m.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a, b = build_rows(toy_dataset(), m), build_rows(toy_dataset(), shuffled)
    assert a.build == b.build
    pd.testing.assert_frame_equal(a.nodes[Label.ENTITY], b.nodes[Label.ENTITY])


def test_the_stamp_changes_with_data_and_mentions_only():
    data = toy_dataset()
    assert build_stamp(data) == build_stamp(data)
    assert build_stamp(data) != build_stamp(data, toy_mentions())
    assert build_stamp(data) != build_stamp(toy_dataset_v2())
    changed = toy_mentions().assign(confidence=lambda f: f.confidence / 2)
    assert build_stamp(data, toy_mentions()) != build_stamp(data, changed)


def test_mentions_of_unknown_items_are_refused():
    m = pd.concat([toy_mentions(), toy_mentions().head(1).assign(item_id="ghost")])
    with pytest.raises(SchemaError, match=r"1 rows name items missing .*ghost"):
        build_rows(toy_dataset(), m)


@pytest.mark.parametrize("bad", [1.5, -0.1, None])
def test_confidences_outside_0_1_are_refused(bad):
    m = toy_mentions()
    m.loc[0, "confidence"] = bad
    with pytest.raises(ValueError, match="confidences are not numbers in"):
        build_rows(toy_dataset(), m)


def test_missing_mention_columns_are_named():
    with pytest.raises(ValueError, match="missing \\['confidence'\\]"):
        build_rows(toy_dataset(), toy_mentions().drop(columns=["confidence"]))


def test_mentions_without_a_source_column_are_accepted():
    rows = build_rows(toy_dataset(), toy_mentions().drop(columns=["source"]))
    assert rows.rels[RelType.MENTIONS]["source"].isna().all()


def _brute_co_interactions(pairs: list[tuple[str, str]], partners: int) -> list[tuple]:
    fans: dict[str, set[str]] = {}
    for u, i in pairs:
        fans.setdefault(i, set()).add(u)
    out = []
    for i in sorted(fans):
        common = {x: sorted(fans[i] & fans[x]) for x in fans if x != i and fans[i] & fans[x]}
        best = sorted(common, key=lambda x: (-len(common[x]), x))[:partners]
        out += [(i, x, len(common[x]), common[x][0], common[x][1] if len(common[x]) > 1 else None)
                for x in best]
    return out


def test_co_interactions_keep_each_items_best_partners_with_exact_counts():
    # Ids whose code-point order differs from UTF-16 order ('\uffff' < '🎉' by code point), and
    # repeated (user, item) pairs, which count once.
    users = ["u1", "u2", "\uffff", "🎉", "u5"]
    items = ["a", "b", "c", "\ue000", "😀"]
    pairs = [(u, i) for n, u in enumerate(users) for m, i in enumerate(items) if (n + m) % 3 != 1]
    pairs += pairs[:4]
    frame = pd.DataFrame(pairs, columns=["src", "dst"])
    for partners in (1, 2, 10):
        got = co_interactions(frame, partners=partners)
        assert list(got.columns) == ["src", "dst", "users", "first_user", "second_user"]
        rows = [(s, d, int(n), f, None if pd.isna(t) else t)
                for s, d, n, f, t in got.itertuples(index=False, name=None)]
        assert sorted(rows) == sorted(_brute_co_interactions(pairs, partners)), partners
    assert len(co_interactions(frame.iloc[:0])) == 0


def test_co_interactions_are_built_from_the_interactions():
    rows = build_rows(toy_dataset(), toy_mentions())
    co = rows.rels[RelType.CO_INTERACTED]
    inter = rows.rels[RelType.INTERACTED]
    expected = _brute_co_interactions(list(zip(inter["src"], inter["dst"])), CO_INTERACTION_PARTNERS)
    assert sorted(co.itertuples(index=False, name=None), key=str) == sorted(
        expected, key=str)
    # ben and cy both read i2 and i4
    assert (("i2", "i4", 2, "ben", "cy")) in expected
    assert rows.expected_counts().edges["CO_INTERACTED"] == 12
