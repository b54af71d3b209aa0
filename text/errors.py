"""Errors raised by the text package (encoders, extractors, linking)."""

from __future__ import annotations


class TextError(Exception):
    """Base class of every error the text package raises on purpose."""


class EncoderError(TextError):
    """An encoder could not be built: its model folder is missing, not a model, or unloadable."""


class ExtractionError(TextError):
    """Entity extraction failed as a whole, for example too many answers could not be parsed.

    Attributes:
        backend: the extractor's ``source`` string (backend and model).
        failed: texts whose answer could not be parsed or never came back.
        total: texts sent to the model in the failing call.
        examples: at most five ``(item_id, reason)`` pairs, reasons shortened.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        failed: int = 0,
        total: int = 0,
        examples: tuple[tuple[str, str], ...] = (),
    ):
        self.backend = backend
        self.failed = failed
        self.total = total
        self.examples = tuple(examples)[:5]
        super().__init__(message)
