"""Shared fixtures: the real corpora, read once per session."""

from __future__ import annotations

import pytest

import support  # noqa: F401  (sets EDGEPOP_CACHE_DIR before any runtime starts)
from edgepop import corpora


@pytest.fixture(scope="session")
def code_corpus() -> list[corpora.Document]:
    return corpora.code_corpus()


@pytest.fixture(scope="session")
def multilingual_corpus() -> dict[str, str]:
    return corpora.multilingual_corpus()
