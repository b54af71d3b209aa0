"""The validated, typed, immutable ``Dataset`` that every downstream step receives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quality.contract import CATEGORY_SEPARATOR


def _freeze(frame: pd.DataFrame) -> pd.DataFrame:
    # Copy-on-write (pandas 3) already stops writes from leaking back; marking the numpy
    # buffers read-only makes an in-place edit fail loudly instead of silently diverging.
    frame = frame.copy()
    for col in frame.columns:
        values = frame[col].values
        if isinstance(values, np.ndarray):
            values.flags.writeable = False
    return frame


@dataclass(frozen=True, eq=False)
class Dataset:
    """One domain's data after it passed the quality gate.

    Only :func:`quality.gate.open_dataset` builds one. Client code must not modify the frames.

    Attributes:
        domain: ``ecommerce``, ``content``, ``social`` or ``travel``.
        name: the dataset name from ``dataset.yaml``.
        users: ``user_id`` (str, unique), optional ``profile_text``, ``lat``/``lon``, attributes.
        items: ``item_id`` (str, unique), ``title``, optional ``description``, ``category``
            (``"a|b"``), ``lat``/``lon``, attributes.
        interactions: ``user_id``, ``item_id``, ``timestamp`` (UTC datetime), ``rating``
            (float, NaN when absent), ``event`` (str), ``weight`` (float, 1.0 when absent),
            ``review_text`` (str, may be empty).
        user_links: ``src_user_id``, ``dst_user_id``, ``kind``, ``timestamp``; empty when the
            dataset has none.
        content_hash: sha256 of the folder's contract files; equal hash means equal data.
        source: the folder it was read from.
        notes: free text from ``dataset.yaml``.
        rating_range: the declared rating scale, if any.
    """

    domain: str
    name: str
    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    user_links: pd.DataFrame
    content_hash: str
    source: Path | None = None
    notes: str = ""
    rating_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("users", "items", "interactions", "user_links"):
            object.__setattr__(self, name, _freeze(getattr(self, name)))

    def __repr__(self) -> str:
        return (
            f"Dataset(domain={self.domain!r}, name={self.name!r}, users={len(self.users)}, "
            f"items={len(self.items)}, interactions={len(self.interactions)}, "
            f"user_links={len(self.user_links)}, hash={self.content_hash[:12]})"
        )

    @property
    def short_hash(self) -> str:
        return self.content_hash[:16]

    def item_categories(self) -> pd.DataFrame:
        """One row per (item_id, category) from the pipe-separated ``category`` column."""
        if "category" not in self.items.columns:
            return pd.DataFrame({"item_id": pd.Series(dtype=str), "category": pd.Series(dtype=str)})
        cats = self.items[["item_id", "category"]].copy()
        cats["category"] = cats["category"].fillna("").astype(str).str.split(CATEGORY_SEPARATOR)
        cats = cats.explode("category")
        cats["category"] = cats["category"].str.strip()
        cats = cats[cats["category"] != ""]
        return cats.drop_duplicates().reset_index(drop=True)

    def item_text(self) -> pd.Series:
        """The text that describes each item (title, categories, description), by item_id."""
        parts = [self.items["title"].fillna("").astype(str)]
        if "category" in self.items.columns:
            parts.append(
                self.items["category"].fillna("").astype(str).str.replace(CATEGORY_SEPARATOR, ", ")
            )
        if "description" in self.items.columns:
            parts.append(self.items["description"].fillna("").astype(str))
        text = parts[0]
        for p in parts[1:]:
            text = text.str.cat(p, sep=". ")
        text = text.str.replace(r"(\.\s*)+$", "", regex=True).str.replace(r"\.\s*\.", ".", regex=True)
        return pd.Series(text.values, index=self.items["item_id"].values, name="text")

    def user_text(self) -> pd.Series:
        """Each user's profile text by user_id (empty string when the user has none)."""
        if "profile_text" in self.users.columns:
            text = self.users["profile_text"].fillna("").astype(str)
        else:
            text = pd.Series([""] * len(self.users))
        return pd.Series(text.values, index=self.users["user_id"].values, name="text")
