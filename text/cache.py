"""On-disk cache of embeddings and extractions, keyed by a content hash, so re-runs skip model work.

One SQLite file (standard library, crash-safe journal) under a folder the caller gives, normally
``<out>/cache/``. Keys are sha256 digests of (model id, prompt/config version, text), so the cache
holds no ids and no raw input text: a user id never enters it, and a key says nothing about the
text without the text. Values are float32 vector bytes or small JSON documents.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FILE = "text-cache.sqlite3"
_SEP = "\x1f"  # unit separator: cannot appear in a model id or version, so parts never run together
_CHUNK = 500  # stay well under SQLite's bound-parameter limit


def cache_key(*parts: str) -> str:
    """sha256 hex digest of the parts, joined so that ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(_SEP.encode())
    return h.hexdigest()


@dataclass
class CacheStats:
    """What the cache answered since it was opened (or since :meth:`TextCache.reset_stats`)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0


class TextCache:
    """Embeddings and extraction results stored by content hash in ``<folder>/text-cache.sqlite3``.

    Safe to share between threads of one process; separate processes may open the same folder
    (SQLite serialises their writes).

    Args:
        folder: where the cache file lives; created if missing.

    Example:
        >>> cache = TextCache("out/cache")
        >>> key = cache_key("model-a", "embed-v1", "hello")
        >>> cache.put_vectors({key: np.ones(3, dtype=np.float32)})
        >>> cache.get_vectors([key])[key].shape
        (3,)
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / CACHE_FILE
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, data BLOB)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS documents (key TEXT PRIMARY KEY, data TEXT)")
        self._db.commit()

    def __repr__(self) -> str:
        return f"TextCache({str(self.path)!r}, {self.stats})"

    # deepcopy/pickle (tests copy encoders that hold a cache) reopen the same file
    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def reset_stats(self) -> None:
        self.stats = CacheStats()

    def _select(self, table: str, keys: Sequence[str]) -> list[tuple]:
        rows: list[tuple] = []
        cols = "key, dim, data" if table == "vectors" else "key, data"
        with self._lock:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows += self._db.execute(
                    f"SELECT {cols} FROM {table} WHERE key IN ({marks})", chunk
                ).fetchall()
        return rows

    def get_vectors(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored float32 vectors for those keys that are present."""
        keys = list(dict.fromkeys(keys))
        found = {
            k: np.frombuffer(data, dtype=np.float32, count=dim)
            for k, dim, data in self._select("vectors", keys)
        }
        self.stats.hits += len(found)
        self.stats.misses += len(keys) - len(found)
        return found

    def put_vectors(self, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [
            (k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for k, v in vectors.items()
        ]
        self._write("INSERT OR REPLACE INTO vectors (key, dim, data) VALUES (?, ?, ?)", rows)

    def get_documents(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored JSON documents for those keys that are present."""
        keys = list(dict.fromkeys(keys))
        found = {k: json.loads(data) for k, data in self._select("documents", keys)}
        self.stats.hits += len(found)
        self.stats.misses += len(keys) - len(found)
        return found

    def put_documents(self, documents: Mapping[str, Any]) -> None:
        rows = [(k, json.dumps(v, ensure_ascii=False)) for k, v in documents.items()]
        self._write("INSERT OR REPLACE INTO documents (key, data) VALUES (?, ?)", rows)

    def _write(self, sql: str, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self._lock:
            with self._db:  # one transaction: a crash leaves either all rows or none
                self._db.executemany(sql, rows)
        self.stats.writes += len(rows)

    def __len__(self) -> int:
        with self._lock:
            (a,) = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
            (b,) = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()
        return int(a + b)
