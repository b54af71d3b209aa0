"""``ServeConfig``: what the API serves and how it is protected."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ServeConfig(BaseModel):
    """Settings of one API process (``kgrec serve`` builds it from its options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out: Path = Path("out")
    """Output root: every ``<out>/<domain>/latest`` publication found there is served."""
    graph: str = "embedded"
    """Where explanations come from: ``embedded`` (``<out>/<domain>/graph/graph.pkl``, reloaded
    with each publication) or a ``bolt://`` URI (credentials from ``KGREC_NEO4J_*``)."""
    api_key: SecretStr | None = None
    """When set, every route except the health checks needs it in the ``X-API-Key`` header."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS; empty keeps CORS off."""
    check_interval_s: float = Field(2.0, ge=0)
    """How often a request re-reads ``latest`` to notice a new publication (0: every request)."""
    explain_paths: int = Field(3, ge=1, le=10)
    """Explanation paths per recommended item. A published list's come from the publication
    (the refresh published up to its ``explain_paths``, 4 by default); the graph is read for
    more paths than that, for items from beyond the list, or when the refresh published none."""
    explain_history: int | None = Field(200, ge=1)
    """Explanations go through the items of the user's this many latest interactions (None:
    the whole history). Published explanations are used only when the refresh's
    ``explain_history`` is the same. A path search costs in proportion to the history it walks: on
    ml-latest-small a user with 2,700 items took about 45 ms of Neo4j time against 4 ms for a
    typical user, and under load those requests made the p99."""
    max_text_chars: int = Field(4000, ge=16, le=100_000)
    """Longest free-text query accepted; longer ones are refused with 422."""
    text_parallel: int = Field(default_factory=lambda: max(1, usable_cores() // 2), ge=1, le=256)
    """Encoder passes run at once, one core each (the encoder releases the GIL); queries that
    arrive while all are busy share the next pass. Default: half the cores this process may use,
    leaving the rest to HTTP and ranking. On 2 cores one pass beat two: with 4 concurrent text
    requests p99 was 49-53 ms against 57-67 ms, and 11-12 ms of CPU per request against 12-15,
    because batches grow when queries wait for one pass."""

    @field_validator("graph")
    @classmethod
    def _graph_target(cls, v: str) -> str:
        if v != "embedded" and not v.startswith(("bolt://", "neo4j://", "bolt+s://", "neo4j+s://")):
            raise ValueError(f"graph must be 'embedded' or a bolt:// URI, got {v!r}")
        return v
