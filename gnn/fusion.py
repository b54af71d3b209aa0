"""Layer-0 node states: text embeddings as node features fused with id embeddings dropped at random.

Every node starts from ``W · text`` (one projection shared by all node types, so a profile
text, a free-text query and an item description land in the same space) plus, for users and
items seen in training, a learnable id embedding. During training the id embedding of a random
share of nodes is dropped, so the model learns to place a node from its text and its
neighbours alone; that is exactly the situation of a new item or a new user at inference
(Volkovs et al. 2017, "DropoutNet: Addressing Cold Start in Recommender Systems").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

NODE_TYPES = ("user", "item", "entity", "category")


@dataclass(frozen=True, eq=False)
class NodeFeatures:
    """Text embeddings aligned with the node indices of the exported graph.

    Rows of nodes without text may hold anything; the masks say which rows are real. A missing
    mask means every row has text.

    Attributes:
        x_item: ``[n_item, d]`` item text embeddings.
        x_user: ``[n_user, d]`` user profile embeddings, or ``None``.
        has_text_user: ``[n_user]`` bool, True where ``x_user`` holds a real profile.
        x_entity: ``[n_entity, d]`` entity name embeddings, or ``None``.
        x_category: ``[n_category, d]`` category name embeddings, or ``None``.
        has_text_item: ``[n_item]`` bool, True where the item has text.
    """

    x_item: Tensor
    x_user: Tensor | None = None
    has_text_user: Tensor | None = None
    x_entity: Tensor | None = None
    x_category: Tensor | None = None
    has_text_item: Tensor | None = None

    def text(self, node_type: str) -> tuple[Tensor, Tensor] | None:
        """``(x, has_text)`` for a node type, or ``None`` when that type has no text at all."""
        x = {"item": self.x_item, "user": self.x_user, "entity": self.x_entity,
             "category": self.x_category}.get(node_type)
        if x is None:
            return None
        x = torch.as_tensor(x, dtype=torch.float32)
        mask = {"item": self.has_text_item, "user": self.has_text_user}.get(node_type)
        mask = torch.ones(len(x), dtype=torch.bool) if mask is None else torch.as_tensor(mask, dtype=torch.bool)
        if len(mask) != len(x):
            raise ValueError(f"{node_type}: text mask has {len(mask)} rows, features have {len(x)}")
        return x, mask

    @property
    def dim(self) -> int:
        return int(self.x_item.shape[1])


class FusedNodeEncoder(nn.Module):
    """Text projection + id embeddings for every node type.

    Args:
        num_nodes: node count per type.
        text_dim: width of the text embeddings (0 when no type has text).
        dim: width of the fused states.
        text_types: node types that receive projected text.
        id_types: node types that get a learnable id embedding.
    """

    def __init__(self, num_nodes: dict[str, int], text_dim: int, dim: int,
                 text_types: tuple[str, ...], id_types: tuple[str, ...]) -> None:
        super().__init__()
        self.num_nodes = dict(num_nodes)
        self.text_types = tuple(t for t in text_types if t in num_nodes)
        self.id_types = tuple(t for t in id_types if t in num_nodes)
        self.dim = dim
        self.proj = nn.Linear(text_dim, dim, bias=False) if self.text_types and text_dim else None
        self.ids = nn.ModuleDict({t: nn.Embedding(num_nodes[t], dim) for t in self.id_types})
        # the state of a node that has neither text nor an id: one learned vector per type
        self.blank = nn.ParameterDict({t: nn.Parameter(torch.zeros(dim)) for t in num_nodes})
        for emb in self.ids.values():
            nn.init.normal_(emb.weight, std=0.1)

    def forward(self, text: dict[str, tuple[Tensor, Tensor]], id_mask: dict[str, Tensor]) -> dict[str, Tensor]:
        """Layer-0 states.

        Args:
            text: ``(x, has_text)`` per node type with text; rows whose mask is False are not
                projected (so a caller can mask out nodes that take no part in scoring).
            id_mask: per id type, a bool ``[n]`` mask of nodes whose id embedding is used
                (nodes unseen in training, and nodes dropped in this step, are False).

        Returns:
            ``[n, dim]`` per node type.
        """
        out = {}
        for t, n in self.num_nodes.items():
            h = self.blank[t].expand(n, -1)
            if self.proj is not None and t in self.text_types and t in text:
                x, has = text[t]
                if bool(has.all()):
                    h = self.proj(x)
                else:
                    rows = torch.nonzero(has).flatten()
                    h = h.index_put((rows,), self.proj(x[rows]))
            if t in self.ids:
                m = id_mask[t]
                # a node with text keeps its text and adds its id; a node without text but
                # with an id is placed by its id alone
                h = h + self.ids[t].weight * m.unsqueeze(1).to(h.dtype)
            out[t] = h
        return out
