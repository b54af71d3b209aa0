"""Small, hashable references that Prefect tasks pass instead of frames, drivers or tensors."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict


def digest(*parts) -> str:
    """sha256 of the JSON form of ``parts``: a stable cache key."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class DatasetRef(BaseModel):
    """A gated dataset's snapshot on disk."""

    model_config = ConfigDict(frozen=True)

    path: str
    content_hash: str
    domain: str
    docs: str = ""

    def load(self):
        from quality.gate import load_snapshot

        return load_snapshot(self.path)


class GraphRef(BaseModel):
    """A built graph: where it lives, its build stamp and its exported tensors."""

    model_config = ConfigDict(frozen=True)

    target: str
    domain: str
    build: str
    export: str


class ArtifactRef(BaseModel):
    """A file or folder a task produced, with the key that identifies its content."""

    model_config = ConfigDict(frozen=True)

    path: str
    key: str
    rows: int = 0
