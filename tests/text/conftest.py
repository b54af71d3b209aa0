"""Fixtures of the text tests: real models, loaded once per session."""

from __future__ import annotations

import copy
import os

import pytest

# A busy shared 2-core box makes spinning OpenMP threads slow MiniLM tenfold (DEPS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def minilm_session():
    """The default encoder (all-MiniLM-L6-v2 from its PyPI package) on the CPU, loaded once."""
    from text.encoders import EncoderConfig, TextEncoder

    return TextEncoder(EncoderConfig(device="cpu"))


@pytest.fixture
def minilm(minilm_session):
    """A private wrapper per test: tests attach caches and read counters. The model inside is
    shared, which is safe because encoding never changes it (a deepcopy costs ~1 s a test)."""
    return copy.copy(minilm_session)


@pytest.fixture(scope="session")
def ner_session():
    """The default offline extractor for every domain, loaded once per domain."""
    from text.extraction import DOMAIN_ENTITY_TYPES, DefaultNerExtractor

    return {d: DefaultNerExtractor(d) for d in DOMAIN_ENTITY_TYPES}


@pytest.fixture
def ner(ner_session):
    """``ner["travel"]`` etc.: private copies, so counters and caches do not leak between tests."""
    return {d: copy.copy(ex) for d, ex in ner_session.items()}


@pytest.fixture(scope="session")
def travel_sample():
    """The committed travel sample folder through the real quality gate."""
    from pathlib import Path

    from quality.gate import open_dataset

    return open_dataset(Path(__file__).parents[2] / "quality" / "samples" / "travel")
