"""Errors of the API layer; the app maps each class to one HTTP status."""

from __future__ import annotations


class ServeError(Exception):
    """Base class of the API's own errors."""


class NotFoundError(ServeError, LookupError):
    """An unknown domain, user or item (HTTP 404). The message names which."""


class InvalidRequestError(ServeError, ValueError):
    """A request that is well-formed but cannot be answered as asked (HTTP 422).

    Attributes:
        field: the request field at fault (``near``, ``history``, ...).
        where: ``query`` or ``body``.
    """

    def __init__(self, message: str, field: str, where: str = "query") -> None:
        super().__init__(message)
        self.field = field
        self.where = where


class UnavailableError(ServeError):
    """A publication or the graph store cannot be read right now (HTTP 503)."""
