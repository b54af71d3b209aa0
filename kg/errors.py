"""Errors raised by the knowledge-graph package."""

from __future__ import annotations


class KgError(Exception):
    """Base class of every error raised by :mod:`kg`."""


class SchemaError(KgError):
    """Rows or a stored graph that do not fit the graph schema.

    Raised for relationship rows whose endpoints were never written, ids too long to index,
    mention rows for items the dataset does not have, and a stored graph written by another
    schema version or left incomplete by an interrupted build.
    """


class GraphStoreError(KgError):
    """A graph store could not do what was asked: unreachable server, refused login, failed query.

    The message names the query constant (or the connection step) and the URI, never the
    password or the rows sent. The driver's exception is chained as ``__cause__``.

    Attributes:
        query: the name of the query constant that failed, or the step (``"connect"``).
        uri: where the store was talking to.
    """

    def __init__(self, message: str, *, query: str = "", uri: str = ""):
        super().__init__(message)
        self.query = query
        self.uri = uri
