"""Errors raised by the model package."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training diverged or could not proceed (NaN/inf loss or embeddings).

    Attributes:
        epoch: the 1-based epoch in which the problem was found, or ``None`` before training.
    """

    def __init__(self, message: str, epoch: int | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
