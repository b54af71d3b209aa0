"""Explanation paths: why an item may suit a user, read from the graph as short paths.

Four kinds of path join a user to an item:

* ``co_interaction``: user → X ← other users → item ("You liked X; 3 people who liked X also
  liked Y."), ranked by how many other users liked both;
* ``entity``: user → X → entity ← item, ranked by the product of the two mention confidences;
* ``friend``: user → followed user → item, ranked by how often that user interacted with it;
* ``category``: user → X → category ← item, ranked by how many of the user's items share it.

The store returns raw path rows (:meth:`~kg.store.GraphStore.path_rows`); all ranking, tie
breaking and wording happen here, so every store gives the same answer. Ties break on ids in
code-point order. :func:`explain` returns the best path of each kind first (kinds in
:data:`KIND_ORDER`), then the second best of each, and so on, up to ``k`` paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kg.schema import NAME, TITLE, Label, PathKind
from kg.store import GraphStore

#: Which kind of path comes first among paths of equal rank.
KIND_ORDER: tuple[PathKind, ...] = (
    PathKind.CO_INTERACTION, PathKind.FRIEND, PathKind.ENTITY, PathKind.CATEGORY,
)

#: Longest name quoted in a sentence, in characters.
MAX_NAME_CHARS = 60


@dataclass(frozen=True)
class ExplanationPath:
    """One path from a user to an item, with its sentence.

    Attributes:
        kind: which kind of path.
        node_ids: ids along the path, from the user to the item.
        labels: the label of each node on the path.
        score: the kind's ranking score (see the module doc); comparable within a kind only.
        sentence: one line a person can read.
    """

    kind: PathKind
    node_ids: tuple[str, ...]
    labels: tuple[str, ...]
    score: float
    sentence: str


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 1] + "…"


class _Names:
    """Display names of nodes (item titles, entity and category names, user ids)."""

    def __init__(self, store: GraphStore, domain: str):
        self.store, self.domain = store, domain
        self.cache: dict[tuple[Label, str], str] = {}

    def load(self, label: Label, ids: set[str]) -> None:
        todo = sorted(i for i in ids if (label, i) not in self.cache)
        if not todo:
            return
        props = self.store.node_props(label, self.domain, todo)
        key = TITLE if label is Label.ITEM else NAME
        for i in todo:
            self.cache[(label, i)] = _short(props.get(i, {}).get(key) or i)

    def __call__(self, label: Label, id_: str) -> str:
        return self.cache.get((label, id_), _short(id_))


def _co_interaction(rows: pd.DataFrame, user: str, item: str, name: _Names) -> list[ExplanationPath]:
    if rows.empty:
        return []
    g = rows.groupby("via_item", sort=True)["other_user"].agg(["nunique", "min"]).reset_index()
    g = g.sort_values(["nunique", "via_item"], ascending=[False, True], kind="stable")
    name.load(Label.ITEM, set(g["via_item"]) | {item})
    out = []
    for via, n, other in g[["via_item", "nunique", "min"]].itertuples(index=False):
        people = "1 person" if n == 1 else f"{n} people"
        out.append(ExplanationPath(
            PathKind.CO_INTERACTION, (user, via, other, item),
            (Label.USER, Label.ITEM, Label.USER, Label.ITEM), float(n),
            f"You liked {name(Label.ITEM, via)}; {people} who liked "
            f"{name(Label.ITEM, via)} also liked {name(Label.ITEM, item)}."))
    return out


def _entity(rows: pd.DataFrame, user: str, item: str, name: _Names) -> list[ExplanationPath]:
    if rows.empty:
        return []
    rows = rows.assign(score=rows["via_confidence"].astype(float) * rows["item_confidence"].astype(float))
    rows = rows.sort_values(["score", "via_item", "entity"], ascending=[False, True, True],
                            kind="stable")
    name.load(Label.ITEM, set(rows["via_item"]) | {item})
    name.load(Label.ENTITY, set(rows["entity"]))
    out = []
    for via, ent, score in rows[["via_item", "entity", "score"]].itertuples(index=False):
        e = name(Label.ENTITY, ent)
        out.append(ExplanationPath(
            PathKind.ENTITY, (user, via, ent, item),
            (Label.USER, Label.ITEM, Label.ENTITY, Label.ITEM), float(score),
            f"You liked {name(Label.ITEM, via)}, which mentions {e}; "
            f"{name(Label.ITEM, item)} mentions {e} too."))
    return out


def _friend(rows: pd.DataFrame, user: str, item: str, name: _Names) -> list[ExplanationPath]:
    if rows.empty:
        return []
    g = rows.groupby("friend", sort=True)["ts"].agg(["count", "max"]).reset_index()
    g = g.sort_values(["count", "max", "friend"], ascending=[False, False, True], kind="stable")
    name.load(Label.ITEM, {item})
    out = []
    for friend, n in g[["friend", "count"]].itertuples(index=False):
        times = "" if n == 1 else f" ({n} times)"
        out.append(ExplanationPath(
            PathKind.FRIEND, (user, friend, item), (Label.USER, Label.USER, Label.ITEM), float(n),
            f"{_short(friend)}, whom you follow, liked {name(Label.ITEM, item)}{times}."))
    return out


def _category(rows: pd.DataFrame, user: str, item: str, name: _Names) -> list[ExplanationPath]:
    if rows.empty:
        return []
    # The example item of a category is the one the user liked most recently (ties: lowest id).
    latest = rows.sort_values(["category", "ts", "via_item"], ascending=[True, False, True],
                              kind="stable").drop_duplicates("category")
    sizes = rows.groupby("category")["via_item"].nunique()
    latest = latest.assign(n=latest["category"].map(sizes))
    latest = latest.sort_values(["n", "category"], ascending=[False, True], kind="stable")
    name.load(Label.ITEM, set(latest["via_item"]) | {item})
    name.load(Label.CATEGORY, set(latest["category"]))
    out = []
    for via, cat, n in latest[["via_item", "category", "n"]].itertuples(index=False):
        c = name(Label.CATEGORY, cat)
        others = "" if n == 1 else f" (and {n - 1} more you liked)"
        out.append(ExplanationPath(
            PathKind.CATEGORY, (user, via, cat, item),
            (Label.USER, Label.ITEM, Label.CATEGORY, Label.ITEM), float(n),
            f"You liked {name(Label.ITEM, via)} in {c}{others}; "
            f"{name(Label.ITEM, item)} is in {c} too."))
    return out


_RANKERS = {
    PathKind.CO_INTERACTION: _co_interaction,
    PathKind.ENTITY: _entity,
    PathKind.FRIEND: _friend,
    PathKind.CATEGORY: _category,
}


def explain_paths(store: GraphStore, domain: str, user_id: str, item_id: str,
                  kind: PathKind) -> list[ExplanationPath]:
    """Every path of one kind from the user to the item, best first."""
    kind = PathKind(kind)
    rows = store.path_rows(kind, domain, user_id, item_id)
    return _RANKERS[kind](rows, user_id, item_id, _Names(store, domain))


def explain(store: GraphStore, domain: str, user_id: str, item_id: str,
            k: int = 4) -> list[ExplanationPath]:
    """The best few paths from a user to an item (empty when the graph has none).

    Args:
        store: the graph store.
        domain: the domain of the user and the item.
        user_id: the user.
        item_id: the item (usually one recommended to the user).
        k: how many paths at most.

    Returns:
        Up to ``k`` paths: the best of each kind first, in :data:`KIND_ORDER`, then the second
        best of each kind, and so on.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    names = _Names(store, domain)
    per_kind = []
    for kind in KIND_ORDER:
        rows = store.path_rows(kind, domain, user_id, item_id)
        per_kind.append(_RANKERS[kind](rows, user_id, item_id, names))
    out: list[ExplanationPath] = []
    depth = 0
    while len(out) < k and any(depth < len(paths) for paths in per_kind):
        out.extend(paths[depth] for paths in per_kind if depth < len(paths))
        depth += 1
    return out[:k]
