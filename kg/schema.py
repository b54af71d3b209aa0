"""The graph schema: labels, relationship types, property keys, constraints and export names.

Every name the graph uses is defined here once. Every node carries ``domain`` and an ``id`` that
is unique per (label, domain), so several domains share one database without mixing. Each node
and built relationship also carries ``build``: the stamp of the build that last wrote it, which is
how a refresh finds what disappeared (see :mod:`kg.builder`).

``gnn`` imports names from this module only (node and edge type names, :class:`Vocabulary`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

#: Bumped whenever labels, keys or the meaning of a property change. Stored per domain in the
#: graph (``(:KgrecMeta {domain, schema_version, build, complete})``); export refuses a graph
#: written by another version, and a rebuild replaces it because the build stamp includes it.
SCHEMA_VERSION = 2  # 2: CO_INTERACTED


class Label(StrEnum):
    """Node labels."""

    USER = "User"
    ITEM = "Item"
    CATEGORY = "Category"
    ENTITY = "Entity"


#: One node per domain holding the schema version and the stamp of the last complete build.
META_LABEL = "KgrecMeta"


class RelType(StrEnum):
    """Relationship types."""

    INTERACTED = "INTERACTED"
    IN_CATEGORY = "IN_CATEGORY"
    MENTIONS = "MENTIONS"
    FOLLOWS = "FOLLOWS"
    RECOMMENDED = "RECOMMENDED"
    CO_INTERACTED = "CO_INTERACTED"
    SUGGESTED = "SUGGESTED"


# --------------------------------------------------------------------------- property keys

DOMAIN = "domain"
ID = "id"
BUILD = "build"
# User
PROFILE_TEXT = "profile_text"
LAT = "lat"
LON = "lon"
# Item
TITLE = "title"
DESCRIPTION = "description"
# Category / Entity
NAME = "name"
ENTITY_TYPE = "type"
# INTERACTED
WEIGHT = "weight"
TS = "ts"
EVENT = "event"
RATING = "rating"
# MENTIONS
CONFIDENCE = "confidence"
SOURCE = "source"
# FOLLOWS
KIND = "kind"
# CO_INTERACTED
USERS = "users"
FIRST_USER = "first_user"
SECOND_USER = "second_user"
# RECOMMENDED and SUGGESTED
RANK = "rank"
SCORE = "score"
REASON = "reason"
RUN_ID = "run_id"
# KgrecMeta
SCHEMA_VERSION_KEY = "schema_version"
COMPLETE = "complete"
UPDATED_AT = "updated_at"

#: Keys the store sets itself on every node; attribute columns with these names are not copied.
RESERVED_NODE_KEYS = (DOMAIN, ID, BUILD)

#: Longest id accepted, in UTF-8 bytes. Neo4j's range index (behind the uniqueness constraint)
#: refuses keys of about 8 KB; ids well under that keep (domain, id) indexable on every backend.
MAX_ID_BYTES = 4000


@dataclass(frozen=True)
class RelSpec:
    """One relationship type: its endpoints, merge key and properties.

    Attributes:
        type: the relationship type.
        src: label of the start node.
        dst: label of the end node.
        key: properties that, with the two endpoints, identify one relationship (a user can
            interact with an item several times, told apart by ``ts``); empty means at most one
            relationship of this type per node pair.
        props: every property the relationship carries (the key included).
    """

    type: RelType
    src: Label
    dst: Label
    key: tuple[str, ...]
    props: tuple[str, ...]


RELS: dict[RelType, RelSpec] = {
    RelType.INTERACTED: RelSpec(RelType.INTERACTED, Label.USER, Label.ITEM, (TS,),
                                (TS, WEIGHT, EVENT, RATING)),
    RelType.IN_CATEGORY: RelSpec(RelType.IN_CATEGORY, Label.ITEM, Label.CATEGORY, (), ()),
    RelType.MENTIONS: RelSpec(RelType.MENTIONS, Label.ITEM, Label.ENTITY, (), (CONFIDENCE, SOURCE)),
    RelType.FOLLOWS: RelSpec(RelType.FOLLOWS, Label.USER, Label.USER, (), (KIND, TS)),
    RelType.RECOMMENDED: RelSpec(RelType.RECOMMENDED, Label.USER, Label.ITEM, (),
                                 (RANK, SCORE, REASON, RUN_ID)),
    RelType.CO_INTERACTED: RelSpec(RelType.CO_INTERACTED, Label.ITEM, Label.ITEM, (),
                                   (USERS, FIRST_USER, SECOND_USER)),
    # people to follow: (user)-[:SUGGESTED]->(the user suggested to them), per publishing run
    RelType.SUGGESTED: RelSpec(RelType.SUGGESTED, Label.USER, Label.USER, (),
                               (RANK, SCORE, REASON, RUN_ID)),
}

#: Relationship types a publishing run owns: replaced per run, never part of a build.
PUBLISHED_RELS: tuple[RelType, ...] = (RelType.RECOMMENDED, RelType.SUGGESTED)

#: How many partners each item gets ``CO_INTERACTED`` relationships to (see
#: :func:`kg.builder.co_interactions`): ``(i)-[:CO_INTERACTED {users: n}]->(x)`` for the
#: ``CO_INTERACTION_PARTNERS`` items ``x`` that share the most users with ``i`` (``n`` users
#: interacted with both; ties broken by ``x``'s id in code-point order), with ``first_user`` and
#: ``second_user`` the two of those users whose ids come first in code-point order (the
#: explanation names one of them; ``second_user`` is absent when ``n`` is 1). Derived from
#: ``INTERACTED`` at build time, so the co-interaction explanation reads a few relationships
#: per item instead of walking every user of every item a user liked.
CO_INTERACTION_PARTNERS = 20

#: Relationship types the builder writes and stamps with ``build``; ``RECOMMENDED`` and
#: ``SUGGESTED`` belong to publishing and are replaced per run instead.
BUILT_RELS: tuple[RelType, ...] = (
    RelType.INTERACTED, RelType.IN_CATEGORY, RelType.MENTIONS, RelType.FOLLOWS,
    RelType.CO_INTERACTED,
)

#: (label, property) pairs that get a plain range index besides the (domain, id) uniqueness
#: constraints: per-domain scans (counts, export, stale deletion) seek on ``domain`` alone.
NODE_INDEXES: tuple[tuple[Label, str], ...] = tuple((label, DOMAIN) for label in Label)


class PathKind(StrEnum):
    """The explanation paths from a user to an item (see :mod:`kg.explain`)."""

    CO_INTERACTION = "co_interaction"  # user → item ← other user → item (via CO_INTERACTED)
    ENTITY = "entity"  # user → item → entity ← item
    FRIEND = "friend"  # user → followed user → item
    CATEGORY = "category"  # user → item → category ← item


#: Pandas dtype of every relationship property when rows are read back, so that every store
#: returns the same frame (nullable integers where a property may be absent).
PROP_DTYPES: dict[str, str] = {
    TS: "Int64", WEIGHT: "float64", EVENT: "object", RATING: "float64",
    CONFIDENCE: "float64", SOURCE: "object", KIND: "object",
    RANK: "Int64", SCORE: "float64", REASON: "object", RUN_ID: "object", USERS: "Int64",
    FIRST_USER: "object", SECOND_USER: "object",
}

# --------------------------------------------------------------------------- export names

#: Node type names in the exported ``HeteroData`` (and in ``gnn``).
NODE_TYPES: dict[Label, str] = {
    Label.USER: "user",
    Label.ITEM: "item",
    Label.ENTITY: "entity",
    Label.CATEGORY: "category",
}

#: Edge types in the exported ``HeteroData``, keyed by the relationship they come from.
EDGE_TYPES: dict[RelType, tuple[str, str, str]] = {
    RelType.INTERACTED: ("user", "interacted", "item"),
    RelType.MENTIONS: ("item", "mentions", "entity"),
    RelType.IN_CATEGORY: ("item", "in_category", "category"),
    RelType.FOLLOWS: ("user", "follows", "user"),
}


class Vocabulary:
    """External string ids ↔ contiguous indices ``0..n-1`` for one node type.

    The order is the order given (:func:`kg.export.export_graph` passes ids sorted by code
    point, so every store yields the same vocabulary). Ids must be unique.

    Example:
        >>> v = Vocabulary(["a", "b"])
        >>> v.index_of("b"), v.indices_of(["b", "zz"]).tolist(), v.id_of(0)
        (1, [1, -1], 'a')
    """

    def __init__(self, ids: Iterable[str]):
        index = pd.Index([str(i) for i in ids], dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"vocabulary ids must be unique; {index.duplicated().sum()} "
                             f"duplicated (first: {dup})")
        self._index = index
        ids_arr = index.to_numpy(dtype=object, copy=True)
        ids_arr.flags.writeable = False
        self._ids = ids_arr

    @property
    def ids(self) -> np.ndarray:
        """The ids in index order (read-only object array)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    def __hash__(self) -> int:
        return hash(tuple(self._ids))

    def __repr__(self) -> str:
        head = ", ".join(repr(i) for i in self._ids[:3])
        more = ", ..." if len(self) > 3 else ""
        return f"Vocabulary(n={len(self)}, ids=[{head}{more}])"

    def index_of(self, id_: str) -> int | None:
        """The index of ``id_``, or ``None`` when it is not in the vocabulary."""
        try:
            return int(self._index.get_loc(id_))
        except KeyError:
            return None

    def indices_of(self, ids: Iterable[str]) -> np.ndarray:
        """Indices (int64) of ``ids``; ``-1`` where an id is unknown."""
        values = ids if isinstance(ids, (np.ndarray, pd.Series, pd.Index)) else list(ids)
        return self._index.get_indexer(pd.Index(values, dtype=object)).astype(np.int64)

    def contains(self, ids: Iterable[str]) -> np.ndarray:
        """A boolean mask: which of ``ids`` are in the vocabulary."""
        return self.indices_of(ids) >= 0

    def id_of(self, index: int) -> str:
        """The id at ``index``; ``IndexError`` outside ``0..len-1``."""
        if not 0 <= index < len(self._ids):
            raise IndexError(f"index {index} outside vocabulary of {len(self._ids)} ids")
        return self._ids[index]

    def ids_of(self, indices: Iterable[int]) -> np.ndarray:
        """The ids at ``indices``."""
        return self._ids[np.asarray(list(indices) if not isinstance(indices, np.ndarray)
                                    else indices, dtype=np.int64)]
