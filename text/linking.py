"""Entity linking: surface forms to stable entity ids, merging variants and keeping aliases.

Two steps. First every mention gets a normalised key (case, punctuation, a leading "the",
corporate suffixes such as "Inc." for names, plural endings for common nouns), so "Apple",
"apple inc." and "APPLE" share the key ``apple``. Then keys of the same type whose names embed
closer than ``name_threshold`` are merged ("colour"/"color", "NYC"/"New York City"), provided
the items that mention them are alike too (``context_threshold``): the context keeps a fruit
in a grocery catalogue apart from a phone maker. Keys of different types never merge, so
``brand:apple`` and ``product_type:apple`` stay two entities.

The output is the contract :mod:`kg.builder` reads: :data:`LINKED_MENTION_COLUMNS` (one row per
item and entity) and :data:`ENTITY_COLUMNS` (one row per entity, with its aliases).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from text.cleaning import clean_text
from text.encoders import TextEncoder

#: The mention table the graph builder reads: one row per (item, entity).
LINKED_MENTION_COLUMNS = (
    "item_id", "entity_id", "entity_name", "entity_type", "confidence", "source",
)
#: The entity table: one row per entity; ``aliases`` lists the other surface forms seen.
ENTITY_COLUMNS = ("entity_id", "name", "type", "aliases")

#: Types whose values are proper names: corporate suffixes are dropped, plurals are not folded
#: ("Adidas" is not the plural of "Adida").
NAME_TYPES = frozenset({"brand", "artist", "person", "franchise", "city", "landmark"})
_SUFFIX_TYPES = frozenset({"brand", "artist"})
_CORPORATE = frozenset(
    "inc incorporated corp corporation co company ltd limited llc plc gmbh ag sa srl bv nv "
    "kg kgaa pty oy ab as spa".split()
)
# plural forms that the "-ies -> -y" rule gets wrong
_IES_TO_IE = frozenset(
    "movies cookies pies ties lies zombies hippies selfies rookies calories brownies smoothies "
    "goalies".split()
)
_KEEP_S = frozenset("series species news glasses jeans pants shorts leggings sports".split())


class LinkingConfig(BaseModel):
    """How eagerly near-duplicate entities merge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name_threshold: float = Field(0.9, ge=0.0, le=1.0)
    """Cosine between two same-type names at or above which they may merge. At 0.9 MiniLM
    merges "colour"/"color" (0.97) and "NYC"/"New York City" (0.92) but not
    "Samsung"/"Samsung Electronics" (0.86) or "apple"/"apple fruit" (0.73)."""
    context_threshold: float = Field(0.3, ge=-1.0, le=1.0)
    """Cosine between the mean text embeddings of the two entities' items, required as well
    when item texts are given: names alike in unrelated catalogue corners stay apart."""
    batch_rows: int = Field(2048, ge=1)
    """Rows of the similarity matrix computed at a time (memory bound: rows x keys floats)."""


@dataclass(frozen=True)
class LinkedEntities:
    """Linked mentions and the entity table.

    Attributes:
        mentions: :data:`LINKED_MENTION_COLUMNS`, one row per (item_id, entity_id); confidence
            is the best of the merged mentions, source joins their sources with ``+``.
        entities: :data:`ENTITY_COLUMNS`; ``entity_id`` is ``<type>:<slug>`` (``brand:apple``),
            ``aliases`` a sorted list of the other surface forms.
    """

    mentions: pd.DataFrame
    entities: pd.DataFrame


def _singular(word: str) -> str:
    if len(word) <= 3 or not word.isascii() or word in _KEEP_S:
        return word
    if word in _IES_TO_IE:
        return word[:-1]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses") or word.endswith(("shes", "ches", "xes", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
        return word[:-1]
    return word


def normalise_surface(text: str, entity_type: str) -> str:
    """The key that decides which surface forms are the same entity (empty if nothing is left).

    Case-folded, punctuation to spaces (apostrophes dropped, ``&`` read as "and"), a parenthesised
    qualifier kept as words ("apple (fruit)" → "apple fruit", so it does not collapse into
    "apple"), a leading "the" dropped; for brands and artists trailing corporate suffixes
    ("Inc.", "GmbH") dropped; for common-noun types the last word made singular.
    """
    s = unicodedata.normalize("NFKC", clean_text(text)).casefold()
    s = s.replace("&", " and ")
    s = re.sub(r"(\w)['’]s\b", r"\1", s)  # possessive: "Levi's" and "Levi" are one name
    s = re.sub(r"['’`´]", "", s)
    s = re.sub(r"[^\w\s]|_", " ", s)
    words = s.split()
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    if entity_type in _SUFFIX_TYPES:
        while len(words) > 1 and words[-1] in _CORPORATE | {"and"}:
            words.pop()  # "Levi Strauss & Co." -> "levi strauss"
        # "s a" and "s p a" are what punctuation removal leaves of "S.A." and "S.p.A."
        while len(words) > 2 and words[-2:] == ["s", "a"]:
            words = words[:-2]
    if entity_type not in NAME_TYPES and words:
        words[-1] = _singular(words[-1])
    return " ".join(words)


def entity_slug(key: str) -> str:
    """The id after ``<type>:``: the key with spaces as hyphens (letters of any script kept)."""
    return "-".join(key.split())


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _name_form_rank(form: str, count: int) -> tuple:
    # most frequent first; then a form with some capitals that is not all-caps ("Apple" over
    # "APPLE" and "apple"), then the shorter, then alphabetical for a stable answer
    mixed = any(c.isupper() for c in form) and not form.isupper()
    return (-count, not mixed, len(form), form)


def link_entities(
    mentions: pd.DataFrame,
    encoder: TextEncoder | None = None,
    config: LinkingConfig | None = None,
    item_texts: pd.Series | None = None,
) -> LinkedEntities:
    """Turn raw mentions into linked mentions and an entity table.

    Args:
        mentions: at least ``item_id, text, label, confidence, source`` (what
            :func:`text.extraction.extract_entities` returns).
        encoder: when given, same-type keys whose names embed at or above
            ``name_threshold`` merge; without it only equal keys merge.
        config: merge thresholds.
        item_texts: item text by item id (``Dataset.item_text()``); when given, an embedding
            merge also needs the two entities' items to be alike (``context_threshold``).

    Returns:
        :class:`LinkedEntities` with both tables sorted by id, so equal input gives equal output.

    Raises:
        ValueError: a required column is missing.
    """
    config = config or LinkingConfig()
    needed = ("item_id", "text", "label", "confidence", "source")
    if missing := [c for c in needed if c not in mentions.columns]:
        raise ValueError(
            f"mentions lack column(s) {missing}; expected at least {list(needed)} "
            f"(the frame text.extraction.extract_entities returns)"
        )
    frame = mentions[list(needed)].copy()
    frame["item_id"] = frame["item_id"].astype(str)
    frame["text"] = frame["text"].fillna("").astype(str).map(clean_text)
    frame["label"] = frame["label"].astype(str)
    frame["key"] = [normalise_surface(t, lab) for t, lab in zip(frame["text"], frame["label"])]
    frame = frame[frame["key"] != ""].reset_index(drop=True)

    cands = frame.groupby(["label", "key"], sort=True).size()
    cand_list: list[tuple[str, str]] = list(cands.index)
    cand_count = cands.to_numpy()
    uf = _UnionFind(len(cand_list))
    if encoder is not None and len(cand_list) > 1:
        _merge_similar(frame, cand_list, uf, encoder, config, item_texts)

    # canonical candidate of each cluster: the most mentioned key, then the shortest
    clusters: dict[int, list[int]] = defaultdict(list)
    for i in range(len(cand_list)):
        clusters[uf.find(i)].append(i)
    cand_entity: dict[tuple[str, str], str] = {}
    canon_of: dict[str, tuple[str, str]] = {}
    for members in clusters.values():
        best = min(members, key=lambda i: (-cand_count[i], len(cand_list[i][1]), cand_list[i][1]))
        label, key = cand_list[best]
        eid = f"{label}:{entity_slug(key)}"
        canon_of[eid] = cand_list[best]
        for i in members:
            cand_entity[cand_list[i]] = eid

    frame["entity_id"] = [cand_entity[(lab, k)] for lab, k in zip(frame["label"], frame["key"])]
    entities = []
    for eid, grp in frame.groupby("entity_id", sort=True):
        label, key = canon_of[str(eid)]
        canon_forms = Counter(grp.loc[grp["key"] == key, "text"])
        name = min(canon_forms.items(), key=lambda kv: _name_form_rank(kv[0], kv[1]))[0]
        aliases = sorted(set(grp["text"]) - {name})
        entities.append((str(eid), name, label, aliases))
    entity_frame = pd.DataFrame(entities, columns=list(ENTITY_COLUMNS))
    names = dict(zip(entity_frame["entity_id"], entity_frame["name"]))

    linked = (
        frame.groupby(["item_id", "entity_id"], sort=True)
        .agg(
            entity_type=("label", "first"),
            confidence=("confidence", "max"),
            source=("source", lambda s: "+".join(sorted(set(map(str, s))))),
        )
        .reset_index()
    )
    linked["entity_name"] = linked["entity_id"].map(names)
    linked = linked[list(LINKED_MENTION_COLUMNS)].astype(
        {"item_id": str, "entity_id": str, "entity_name": str, "entity_type": str,
         "confidence": "float64", "source": str}
    )
    return LinkedEntities(linked.reset_index(drop=True), entity_frame)


def _merge_similar(
    frame: pd.DataFrame,
    cand_list: list[tuple[str, str]],
    uf: _UnionFind,
    encoder: TextEncoder,
    config: LinkingConfig,
    item_texts: pd.Series | None,
) -> None:
    """Union same-type candidates whose names (and, given texts, items) embed alike."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, (label, _key) in enumerate(cand_list):
        by_type[label].append(i)
    pairs: list[tuple[int, int]] = []
    for idx in by_type.values():
        if len(idx) < 2:
            continue
        keys = [cand_list[i][1] for i in idx]
        vecs = encoder.encode_documents(keys, keys).vectors
        for start in range(0, len(idx), config.batch_rows):
            sims = vecs[start : start + config.batch_rows] @ vecs.T
            rows, cols = np.nonzero(sims >= config.name_threshold)
            for r, c in zip(rows.tolist(), cols.tolist()):
                if start + r < c:
                    pairs.append((idx[start + r], idx[c]))
    if not pairs:
        return
    if item_texts is not None:
        pairs = _keep_alike_contexts(frame, cand_list, pairs, encoder, config, item_texts)
    for a, b in pairs:
        uf.union(a, b)


def _keep_alike_contexts(
    frame: pd.DataFrame,
    cand_list: list[tuple[str, str]],
    pairs: list[tuple[int, int]],
    encoder: TextEncoder,
    config: LinkingConfig,
    item_texts: pd.Series,
) -> list[tuple[int, int]]:
    involved = sorted({i for p in pairs for i in p})
    items_of: dict[int, list[str]] = {}
    grouped = frame.groupby(["label", "key"])["item_id"].unique()
    for i in involved:
        items_of[i] = [str(x) for x in grouped.loc[cand_list[i]]]
    # only the items of candidates that are about to merge are embedded, not the catalogue
    needed = sorted({x for ids in items_of.values() for x in ids if x in item_texts.index})
    table = encoder.encode_documents(needed, [str(item_texts.loc[x]) for x in needed])
    ctx: dict[int, np.ndarray | None] = {}
    for i, ids in items_of.items():
        rows = [table.index_of(x) for x in ids]
        rows = [r for r in rows if r is not None and table.has_text[r]]
        if not rows:
            ctx[i] = None
            continue
        v = table.vectors[rows].mean(axis=0)
        ctx[i] = v / max(float(np.linalg.norm(v)), 1e-12)
    kept = []
    for a, b in pairs:
        va, vb = ctx[a], ctx[b]
        # with no text to compare, the names alone decide
        if va is None or vb is None or float(va @ vb) >= config.context_threshold:
            kept.append((a, b))
    return kept
