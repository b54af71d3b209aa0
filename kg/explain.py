"""Explanation paths: why an item may suit a user, read from the graph as short paths.

Four kinds of path join a user to an item:

* ``co_interaction``: user → X ← other users → item ("You liked X; 3 people who liked X also
  liked Y."), ranked by how many other users liked both; X is one of the item's
  ``CO_INTERACTED`` partners (the :data:`~kg.schema.CO_INTERACTION_PARTNERS` items that share the
  most users with it, counted when the graph is built), and the path names the other user
  with the smallest id;
* ``entity``: user → X → entity ← item, ranked by the product of the two mention confidences;
* ``friend``: user → followed user → item, ranked by how often that user interacted with it;
* ``category``: user → X → category ← item, ranked by how many of the user's items share it.

The store returns path groups (:meth:`~kg.store.GraphStore.path_groups_many`: counts per via
item, entity, friend or category, for a list of items at once, cut to the best few of each
kind); ranking and tie breaking follow :func:`~kg.store.path_group_key` in the store and here,
and the wording happens here, so every store gives the same answer. Ties break on ids in
Neo4j's string order (UTF-16 code units, :func:`~kg.store.id_order`), so that Cypher can cut
them. :func:`explain` returns the best path of each kind first (kinds in :data:`KIND_ORDER`),
then the second best of each, and so on, up to ``k`` paths; :func:`explain_many` does the same
for several items with one read per kind, and names are read only for the paths kept.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kg.schema import NAME, TITLE, Label, PathKind
from kg.store import GraphStore, id_order, path_group_key

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


class NameCache(dict):
    """Display names kept between explanation calls (``explain_many(names=...)``), by
    ``(label, id)``.

    Args:
        item_titles: item id → title (or None), for a caller that already holds the titles of
            the graph's items (the API's publication does): items found there cost no graph
            read. Ids it does not know are read from the graph as usual.
    """

    def __init__(self, item_titles: Mapping[str, str | None] | None = None):
        super().__init__()
        self.item_titles = item_titles


class _Names:
    """Display names of nodes (item titles, entity and category names, user ids)."""

    def __init__(self, store: GraphStore, domain: str, cache: dict | None = None):
        self.store, self.domain = store, domain
        self.cache: dict[tuple[Label, str], str] = {} if cache is None else cache

    def load(self, label: Label, ids: set[str]) -> None:
        todo = sorted(i for i in ids if (label, i) not in self.cache)
        titles = getattr(self.cache, "item_titles", None)
        if todo and label is Label.ITEM and titles is not None:
            known = [i for i in todo if i in titles]
            for i in known:
                self.cache[(label, i)] = _short(titles[i] or i)
            todo = [i for i in todo if (label, i) not in self.cache]
        if not todo:
            return
        props = self.store.node_props(label, self.domain, todo)
        key = TITLE if label is Label.ITEM else NAME
        for i in todo:
            self.cache[(label, i)] = _short(props.get(i, {}).get(key) or i)

    def __call__(self, label: Label, id_: str) -> str:
        return self.cache.get((label, id_), _short(id_))


@dataclass(frozen=True)
class _Draft:
    """A ranked path before its sentence: the names it quotes are read once for all kept paths."""

    kind: PathKind
    node_ids: tuple[str, ...]
    labels: tuple[str, ...]
    score: float
    quotes: tuple[tuple[Label, str], ...]
    sentence: Callable[[_Names], str]

    def finish(self, name: _Names) -> ExplanationPath:
        return ExplanationPath(self.kind, self.node_ids, self.labels, self.score, self.sentence(name))


# Each ranker takes one item's rows of kg.store.PATH_GROUP_COLUMNS (as tuples), the user, the
# item and the history cap the rows were read with (None: the whole history), and returns its
# paths of that kind, best first.

def _co_interaction(rows: list[tuple], user: str, item: str, history: int | None) -> list[_Draft]:
    out = []
    for _, via, n, other in sorted(rows, key=lambda r: path_group_key(PathKind.CO_INTERACTION, r)):
        people = "1 person" if n == 1 else f"{n} people"
        out.append(_Draft(
            PathKind.CO_INTERACTION, (user, via, other, item),
            (Label.USER, Label.ITEM, Label.USER, Label.ITEM), float(n),
            ((Label.ITEM, via), (Label.ITEM, item)),
            lambda name, via=via, people=people: (
                f"You liked {name(Label.ITEM, via)}; {people} who liked "
                f"{name(Label.ITEM, via)} also liked {name(Label.ITEM, item)}.")))
    return out


def _confidence_product(a: Any, b: Any) -> float:
    a = math.nan if a is None else float(a)
    b = math.nan if b is None else float(b)
    return a * b


def _entity(rows: list[tuple], user: str, item: str, history: int | None) -> list[_Draft]:
    # best product first, a missing confidence (NaN) last; then via item, then entity
    rows = sorted(rows, key=lambda r: path_group_key(PathKind.ENTITY, r))
    out = []
    for _, via, ent, c1, c2 in rows:
        score = _confidence_product(c1, c2)
        out.append(_Draft(
            PathKind.ENTITY, (user, via, ent, item),
            (Label.USER, Label.ITEM, Label.ENTITY, Label.ITEM), float(score),
            ((Label.ITEM, via), (Label.ITEM, item), (Label.ENTITY, ent)),
            lambda name, via=via, ent=ent: (
                f"You liked {name(Label.ITEM, via)}, which mentions {name(Label.ENTITY, ent)}; "
                f"{name(Label.ITEM, item)} mentions {name(Label.ENTITY, ent)} too.")))
    return out


def _friend(rows: list[tuple], user: str, item: str, history: int | None) -> list[_Draft]:
    out = []
    for _, friend, n, _ts in sorted(rows, key=lambda r: path_group_key(PathKind.FRIEND, r)):
        times = "" if n == 1 else f" ({n} times)"
        out.append(_Draft(
            PathKind.FRIEND, (user, friend, item), (Label.USER, Label.USER, Label.ITEM), float(n),
            ((Label.ITEM, item),),
            lambda name, friend=friend, times=times: (
                f"{_short(friend)}, whom you follow, liked {name(Label.ITEM, item)}{times}.")))
    return out


def _category(rows: list[tuple], user: str, item: str, history: int | None) -> list[_Draft]:
    out = []
    # The example item of a category is the one the user liked most recently (ties: lowest id).
    # With a history cap the count is among the recent items, and the sentence says so.
    more = "you liked" if history is None else f"in your last {history} interactions"
    for _, cat, n, _ts, latest in sorted(rows, key=lambda r: path_group_key(PathKind.CATEGORY, r)):
        via = min(latest, key=id_order)
        others = "" if n == 1 else f" (and {n - 1} more {more})"
        out.append(_Draft(
            PathKind.CATEGORY, (user, via, cat, item),
            (Label.USER, Label.ITEM, Label.CATEGORY, Label.ITEM), float(n),
            ((Label.ITEM, via), (Label.ITEM, item), (Label.CATEGORY, cat)),
            lambda name, via=via, cat=cat, others=others: (
                f"You liked {name(Label.ITEM, via)} in {name(Label.CATEGORY, cat)}{others}; "
                f"{name(Label.ITEM, item)} is in {name(Label.CATEGORY, cat)} too.")))
    return out


_RANKERS = {
    PathKind.CO_INTERACTION: _co_interaction,
    PathKind.ENTITY: _entity,
    PathKind.FRIEND: _friend,
    PathKind.CATEGORY: _category,
}


def _by_item(rows: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return out


def _finish(store: GraphStore, domain: str, drafts: dict[str, list[_Draft]],
            names: dict | None = None) -> dict[str, list[ExplanationPath]]:
    """Sentences for the kept paths, with one name read per label (for names not in ``names``)."""
    names = _Names(store, domain, names)
    wanted: dict[Label, set[str]] = {}
    for paths in drafts.values():
        for d in paths:
            for label, id_ in d.quotes:
                wanted.setdefault(label, set()).add(id_)
    for label, ids in wanted.items():
        names.load(label, ids)
    return {item: [d.finish(names) for d in paths] for item, paths in drafts.items()}


def explain_paths(store: GraphStore, domain: str, user_id: str, item_id: str,
                  kind: PathKind, history: int | None = None) -> list[ExplanationPath]:
    """Every path of one kind from the user to the item, best first (through the user's
    ``history`` most recent interactions only, when given)."""
    kind = PathKind(kind)
    rows = store.path_groups_many(domain, user_id, [item_id], limit=sys.maxsize, kinds=[kind],
                                  history=history)[kind]
    drafts = _RANKERS[kind](_by_item(rows).get(item_id, []), user_id, item_id, history)
    return _finish(store, domain, {item_id: drafts})[item_id]


def explain_many(store: GraphStore, domain: str, user_id: str, item_ids: Sequence[str],
                 k: int = 4, names: dict | None = None,
                 history: int | None = None) -> dict[str, list[ExplanationPath]]:
    """The best few paths from a user to each of several items, read together.

    Args:
        store: the graph store.
        domain: the domain of the user and the items.
        user_id: the user.
        item_ids: the items (usually those recommended to the user); repeats are read once.
        k: how many paths at most per item.
        names: display names already read, kept between calls by a caller that explains the
            same graph again and again (the API keeps one per publication); names read by this
            call are added to it. Without it, every call reads the names it quotes.
        history: when given, the paths through the user's own items use only their
            ``history`` most recent interactions (:func:`kg.store.history_cut`). A heavy user's
            explanation then costs about what a user with ``history`` items costs: the API
            sets it (``ServeConfig.explain_history``). ``None``: the whole history.

    Returns:
        Item id → what :func:`explain` gives for that item (empty lists where the graph has no
        path), for every distinct id of ``item_ids``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    items = list(dict.fromkeys(item_ids))
    if not items:
        return {}
    groups = store.path_groups_many(domain, user_id, items, limit=k, kinds=KIND_ORDER, history=history)
    ranked = {kind: _by_item(groups[kind]) for kind in KIND_ORDER}
    drafts: dict[str, list[_Draft]] = {}
    for item in items:
        # Only the best k of a kind can be kept, so the rest is never drafted.
        per_kind = [_RANKERS[kind](ranked[kind].get(item, []), user_id, item, history)[:k] for kind in KIND_ORDER]
        out: list[_Draft] = []
        depth = 0
        while len(out) < k and any(depth < len(paths) for paths in per_kind):
            out.extend(paths[depth] for paths in per_kind if depth < len(paths))
            depth += 1
        drafts[item] = out[:k]
    return _finish(store, domain, drafts, names)


def explain(store: GraphStore, domain: str, user_id: str, item_id: str,
            k: int = 4, history: int | None = None) -> list[ExplanationPath]:
    """The best few paths from a user to an item (empty when the graph has none).

    Args:
        store: the graph store.
        domain: the domain of the user and the item.
        user_id: the user.
        item_id: the item (usually one recommended to the user).
        k: how many paths at most.
        history: how many of the user's latest interactions the paths may go through (None: all).

    Returns:
        Up to ``k`` paths: the best of each kind first, in :data:`KIND_ORDER`, then the second
        best of each kind, and so on.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return explain_many(store, domain, user_id, [item_id], k=k, history=history)[item_id]


#: Key of the settings (JSON: ``paths``, ``history``, ``recommendations_sha256``) in the schema
#: metadata of a published ``explanations.parquet``, the table of :func:`explain_lists`.
EXPLANATIONS_META = b"kgrec.explanations"

def read_explanations_meta(path) -> dict:
    """The settings (:data:`EXPLANATIONS_META`) in an ``explanations.parquet``'s metadata.

    Raises:
        ValueError: the file has none (it was not written by a refresh's explanation step).
    """
    import json

    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if EXPLANATIONS_META not in meta:
        raise ValueError(f"{path} has no {EXPLANATIONS_META.decode()} metadata: not written by a refresh")
    return json.loads(meta[EXPLANATIONS_META])


#: Columns of :func:`explain_lists`: one row per path, ``path`` its place (1 = best) among the
#: paths of that user and item.
EXPLANATION_COLUMNS = ("user_id", "item_id", "path", "kind", "sentence", "node_ids", "labels")


def explain_lists(store: GraphStore, domain: str, lists: Mapping[str, Sequence[str]], k: int = 4,
                  history: int | None = None, names: dict | None = None):
    """:func:`explain_many` for every user's list, as one table (what a refresh publishes).

    Args:
        store: the graph store.
        domain: the domain of the users and items.
        lists: user id → the items to explain for that user (a published list).
        k / history: as in :func:`explain_many`.
        names: display names already read (kept and extended across the users).

    Returns:
        A DataFrame with :data:`EXPLANATION_COLUMNS`, users in the order of ``lists`` and items
        in each list's order. An item without any path has no row.
    """
    import pandas as pd

    names = {} if names is None else names
    rows: list[tuple] = []
    for user_id, item_ids in lists.items():
        found = explain_many(store, domain, user_id, item_ids, k=k, names=names, history=history)
        for item_id, paths in found.items():
            rows.extend((user_id, item_id, n, str(p.kind), p.sentence, list(p.node_ids), [str(x) for x in p.labels])
                        for n, p in enumerate(paths, 1))
    return pd.DataFrame(rows, columns=list(EXPLANATION_COLUMNS))
