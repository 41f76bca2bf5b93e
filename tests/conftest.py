"""Shared fixtures: the real corpora, read once per session, and a runtime per module."""

from __future__ import annotations

import pytest

import support  # noqa: F401  (sets EDGEPOP_CACHE_DIR before any runtime starts)
from edgepop import corpora
from edgepop.runtime import Runtime


@pytest.fixture(scope="session")
def code_corpus() -> list[corpora.Document]:
    return corpora.code_corpus()


@pytest.fixture(scope="session")
def multilingual_corpus() -> dict[str, str]:
    return corpora.multilingual_corpus()


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    """A host runtime for a module's components, closed (its components unloaded) after it."""
    rt = Runtime()
    yield rt
    rt.close()
