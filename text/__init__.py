"""Text understanding: encoders, entity extraction, linking, review sentiment and their cache.

Importing the package is cheap; torch, spaCy and transformers load only when a model is built.
Nothing here writes to the graph: :mod:`kg.builder` reads what these modules return.
"""

from text.errors import EncoderError, ExtractionError, TextError

_LAZY = {
    "EmbeddingTable": "text.encoders",
    "EncoderConfig": "text.encoders",
    "TextEncoder": "text.encoders",
    "TextCache": "text.cache",
    "EntityMention": "text.extraction",
    "EntityExtractor": "text.extraction",
    "ExtractionConfig": "text.extraction",
    "DefaultNerExtractor": "text.extraction",
    "LocalLLMExtractor": "text.extraction",
    "HttpLLMExtractor": "text.extraction",
    "make_extractor": "text.extraction",
    "extract_entities": "text.extraction",
    "LinkedEntities": "text.linking",
    "LinkingConfig": "text.linking",
    "link_entities": "text.linking",
    "SentimentConfig": "text.sentiment",
    "review_sentiment": "text.sentiment",
    "review_weights": "text.sentiment",
}

__all__ = ["EncoderError", "ExtractionError", "TextError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'text' has no attribute {name!r}")
