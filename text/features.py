"""Node texts of a dataset (items, users, entities, categories) embedded in a given id order.

The graph export fixes the node order (one vocabulary per node type); this module embeds the
text of each node in exactly that order so the model can take plain ``[n, dim]`` arrays. Nodes
with no text get ``has_text = False`` and the model must not rank by their row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from quality.dataset import Dataset
from text.encoders import EmbeddingTable, TextEncoder


@dataclass(frozen=True, eq=False)
class NodeTexts:
    """The text of every node, by node type, keyed by the node's external id."""

    item: pd.Series
    user: pd.Series
    entity: pd.Series
    category: pd.Series

    def of(self, node_type: str) -> pd.Series:
        return getattr(self, node_type)


def node_texts(dataset: Dataset, mentions: pd.DataFrame | None = None) -> NodeTexts:
    """What each node says about itself.

    Items: title, categories and description. Users: their profile text (empty when they have
    none: history is the model's job, not the encoder's). Entities: their name with their type
    ("Voltara (brand)"), so a brand and a fruit of the same name do not collapse. Categories:
    their name.
    """
    entity = pd.Series(dtype=object)
    if mentions is not None and len(mentions):
        ents = mentions.drop_duplicates("entity_id")
        entity = pd.Series(
            (ents["entity_name"].astype(str) + " (" + ents["entity_type"].astype(str).str.replace("_", " ") + ")").values,
            index=ents["entity_id"].astype(str).values,
        )
    cats = dataset.item_categories()["category"].drop_duplicates()
    category = pd.Series(cats.values, index=cats.values)
    return NodeTexts(item=dataset.item_text(), user=dataset.user_text(), entity=entity, category=category)


def embed_in_order(
    encoder: TextEncoder, ids: Sequence[str], texts: pd.Series, queries: bool = False
) -> EmbeddingTable:
    """Embed ``texts`` (indexed by id) in the order of ``ids``; ids without text are flagged.

    Args:
        encoder: the text encoder.
        ids: the node ids in vocabulary order.
        texts: text by id; ids missing here count as having no text.
        queries: encode as queries (user profiles) rather than documents.
    """
    ids = [str(i) for i in ids]
    aligned = texts.reindex(ids).fillna("").astype(str).tolist()
    if queries:
        return encoder.encode_queries(aligned, ids=ids)
    return encoder.encode_documents(ids, aligned)


def embed_nodes(
    encoder: TextEncoder,
    texts: NodeTexts,
    order: dict[str, Sequence[str]],
) -> dict[str, EmbeddingTable]:
    """Embed every node type in the given id order (``order[node_type]`` = vocabulary ids)."""
    return {
        node_type: embed_in_order(encoder, ids, texts.of(node_type), queries=node_type == "user")
        for node_type, ids in order.items()
    }
