"""The input contract of a kgrec dataset folder: file names, columns, types and domain rules.

This module is the single written form of the contract in DESIGN.md. The gate checks folders
against it; importers and the sample generator write folders that satisfy it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml

DOMAINS = ("ecommerce", "content", "social", "travel")
EVENTS = ("view", "click", "cart", "purchase", "rate", "checkin", "listen", "like")
LINK_KINDS = ("friend", "follow", "trust")
CATEGORY_SEPARATOR = "|"

Kind = Literal["id", "text", "number", "timestamp", "enum"]


@dataclass(frozen=True)
class ColumnSpec:
    """One contract column.

    Attributes:
        name: the column name as it appears in the file header.
        kind: how the column is parsed and checked.
        required: whether the column must be present.
        allowed: the permitted values, for ``enum`` columns.
    """

    name: str
    kind: Kind
    required: bool = False
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileSpec:
    """One contract file (``<stem>.csv`` or ``<stem>.parquet``)."""

    stem: str
    columns: tuple[ColumnSpec, ...]
    required: bool = True
    key: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


USERS = FileSpec(
    "users",
    (
        ColumnSpec("user_id", "id", required=True),
        ColumnSpec("profile_text", "text"),
        ColumnSpec("lat", "number"),
        ColumnSpec("lon", "number"),
    ),
    key=("user_id",),
)
ITEMS = FileSpec(
    "items",
    (
        ColumnSpec("item_id", "id", required=True),
        ColumnSpec("title", "text", required=True),
        ColumnSpec("description", "text"),
        ColumnSpec("category", "text"),
        ColumnSpec("lat", "number"),
        ColumnSpec("lon", "number"),
    ),
    key=("item_id",),
)
INTERACTIONS = FileSpec(
    "interactions",
    (
        ColumnSpec("user_id", "id", required=True),
        ColumnSpec("item_id", "id", required=True),
        ColumnSpec("timestamp", "timestamp", required=True),
        ColumnSpec("rating", "number"),
        ColumnSpec("event", "enum", allowed=EVENTS),
        ColumnSpec("weight", "number"),
        ColumnSpec("review_text", "text"),
    ),
)
USER_LINKS = FileSpec(
    "user_links",
    (
        ColumnSpec("src_user_id", "id", required=True),
        ColumnSpec("dst_user_id", "id", required=True),
        ColumnSpec("kind", "enum", allowed=LINK_KINDS),
        ColumnSpec("timestamp", "timestamp"),
    ),
    required=False,
)
FILES: tuple[FileSpec, ...] = (USERS, ITEMS, INTERACTIONS, USER_LINKS)

#: Columns a domain adds to the required set: travel items are places and need coordinates.
DOMAIN_REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "travel": {"items": ("lat", "lon")},
}


def file_spec(stem: str) -> FileSpec:
    for spec in FILES:
        if spec.stem == stem:
            return spec
    raise ValueError(f"unknown contract file {stem!r}; expected one of {[f.stem for f in FILES]}")


def required_columns(stem: str, domain: str) -> tuple[str, ...]:
    """Required columns of a file, including the domain's extras."""
    base = file_spec(stem).required_columns
    extra = DOMAIN_REQUIRED.get(domain, {}).get(stem, ())
    return base + tuple(c for c in extra if c not in base)


@dataclass(frozen=True)
class DatasetManifest:
    """The parsed ``dataset.yaml``.

    Attributes:
        domain: one of :data:`DOMAINS`.
        name: a short dataset name.
        notes: free text kept with the dataset.
        rating_range: the declared rating scale ``(low, high)``; ratings outside it are refused.
    """

    domain: str
    name: str
    notes: str = ""
    rating_range: tuple[float, float] | None = None

    def to_yaml(self) -> str:
        doc: dict = {"domain": self.domain, "name": self.name}
        if self.notes:
            doc["notes"] = self.notes
        if self.rating_range is not None:
            doc["rating_range"] = [float(self.rating_range[0]), float(self.rating_range[1])]
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def find_file(folder: Path, stem: str) -> Path | None:
    """The contract file ``stem`` in ``folder`` as CSV or Parquet, or ``None``."""
    for ext in (".csv", ".parquet"):
        p = Path(folder) / f"{stem}{ext}"
        if p.exists():
            return p
    return None


def write_dataset(
    folder: str | Path,
    manifest: DatasetManifest,
    users: pd.DataFrame,
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    user_links: pd.DataFrame | None = None,
    fmt: Literal["csv", "parquet"] = "csv",
) -> Path:
    """Write a dataset folder that follows the contract (used by importers and the generator).

    Columns are written in contract order first, then any attribute columns.

    Returns:
        The folder written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.yaml").write_text(manifest.to_yaml(), encoding="utf-8")
    frames = {"users": users, "items": items, "interactions": interactions}
    if user_links is not None:
        frames["user_links"] = user_links
    for stem, frame in frames.items():
        spec = file_spec(stem)
        known = [c.name for c in spec.columns if c.name in frame.columns]
        extra = [c for c in frame.columns if c not in known]
        out = frame[known + extra]
        for other in (".csv", ".parquet"):
            stale = folder / f"{stem}{other}"
            if stale.exists():
                stale.unlink()
        if fmt == "csv":
            out.to_csv(folder / f"{stem}.csv", index=False, lineterminator="\n")
        else:
            out.to_parquet(folder / f"{stem}.parquet", index=False)
    return folder
