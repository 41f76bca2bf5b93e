"""Shared fixtures: the real tokenizer files and the real corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepop import corpora

ROOT = Path(__file__).resolve().parent.parent
TOKENIZERS_DIR = ROOT / "build" / "tokenizers"

# Byte-level BPE tokenizers of real models (tools/fetch_tokenizers.py fetches them).
BYTE_LEVEL_MODELS = ["llama-3.2", "qwen3", "gpt2", "gpt-4o", "gpt-3.5-turbo", "deepseek-v3", "gpt-oss"]


def tokenizer_json(name: str) -> Path:
    """Path of a fetched model's tokenizer.json; fails with the command that fetches it."""
    path = TOKENIZERS_DIR / name / "tokenizer.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make fixtures` (python tools/fetch_tokenizers.py)")
    return path


@pytest.fixture(scope="session")
def code_corpus() -> list[corpora.Document]:
    return corpora.code_corpus()


@pytest.fixture(scope="session")
def multilingual_corpus() -> dict[str, str]:
    return corpora.multilingual_corpus()
