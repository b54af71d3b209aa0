"""The knowledge graph: schema, the GraphStore interface with Neo4j and networkx stores, the
builder, export to PyG and explanation paths.

Importing ``kg`` stays light: each name loads its module on first use (export pulls in torch).
"""

from __future__ import annotations

from importlib import import_module

_NAMES = {
    "SchemaError": "kg.errors",
    "GraphStoreError": "kg.errors",
    "SCHEMA_VERSION": "kg.schema",
    "Label": "kg.schema",
    "RelType": "kg.schema",
    "Vocabulary": "kg.schema",
    "GraphStore": "kg.store",
    "GraphCounts": "kg.store",
    "GraphMeta": "kg.store",
    "Neo4jStore": "kg.neo4j_store",
    "NetworkXStore": "kg.networkx_store",
    "build_graph": "kg.builder",
    "build_rows": "kg.builder",
    "GraphExport": "kg.export",
    "export_graph": "kg.export",
    "ExplanationPath": "kg.explain",
    "explain": "kg.explain",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'kg' has no attribute {name!r}")
