"""Where the test suite finds its real inputs (fetched tokenizer files, built components),
and the oracle it holds them to: HF `tokenizers` beside edgepop's pipeline."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tokenizers import Tokenizer as Reference

from edgepop import conformance
from edgepop.build import TOKENIZER_GUEST_DIR, TOKENIZER_WORLD, WIT_DIR, componentize
from edgepop_tokenizer import Tokenizer as Pipeline

ROOT = Path(__file__).resolve().parent.parent
# Tests share the AOT artefacts `make build` left, as the Makefile does.
os.environ.setdefault("EDGEPOP_CACHE_DIR", str(ROOT / "build" / "cache"))
TOKENIZERS_DIR = ROOT / "build" / "tokenizers"
BUILD_DIR = ROOT / "build"
COMPONENTS_DIR = BUILD_DIR / "components"
TEST_COMPONENTS_SRC = ROOT / "tests" / "components"

# Byte-level BPE tokenizers of real models (tools/fetch_tokenizers.py fetches them).
BYTE_LEVEL_MODELS = ["llama-3.2", "qwen3", "gpt2", "gpt-4o", "gpt-3.5-turbo", "deepseek-v3", "gpt-oss"]
# The other families: WordPiece, SentencePiece BPE with byte fallback, Unigram (with Precompiled).
FAMILY_MODELS = ["all-minilm-l6-v2", "llama-2", "gemma-3", "xlm-r-static", "sentencepiece-test", "sentencepiece-test-ja"]
# Every model `make build` builds a tokenizer component for (the Makefile's MODELS and FAMILY_MODELS).
MODELS = BYTE_LEVEL_MODELS + FAMILY_MODELS


def tokenizer_json(name: str) -> Path:
    """Path of a fetched model's tokenizer.json; fails with the command that fetches it."""
    path = TOKENIZERS_DIR / name / "tokenizer.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make fixtures` (python tools/fetch_tokenizers.py)")
    return path


def component_path(model: str) -> Path:
    """A tokenizer component built by `make build`; fails with the command that builds it."""
    path = COMPONENTS_DIR / f"{model}.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make build`")
    return path


@cache
def reference(name: str) -> Reference:
    """HF's tokenizer for a fetched model: the oracle, padding and truncation off, one per session."""
    return conformance.load_reference(tokenizer_json(name))


@dataclass(frozen=True)
class Pair:
    """One tokenizer twice, from the same tokenizer.json: edgepop's native pipeline and HF's."""

    name: str
    ours: Pipeline
    hf: Reference
    config: dict
    warm_entries: int = 0  # what warm() put in the word cache of `ours` (0: never warmed)


def pair_from_config(name: str, config: dict) -> Pair:
    """The pair for a tokenizer.json a test makes: a variant of a real one, or one HF trained."""
    text = json.dumps(config)
    return Pair(name, Pipeline.from_str(text), conformance.reference_from_str(text), config)


@cache
def model_pair(name: str, warm: bool = False) -> Pair:
    """A fetched model's pair; `warm` fills our word cache first, as a component's build does."""
    text = tokenizer_json(name).read_text(encoding="utf-8")
    ours = Pipeline.from_str(text)
    return Pair(name, ours, reference(name), json.loads(text), ours.warm() if warm else 0)


@cache
def valid_ids(name: str) -> list[int]:
    """Every id a fetched model's vocabulary and added tokens use (there may be holes)."""
    return sorted(set(reference(name).get_vocab(with_added_tokens=True).values()))


def describe_difference(ours: list[int], theirs: list[int], hf: Reference, label: str) -> str:
    """A readable account of where two id lists part: index, both ids, the tokens around."""
    index = conformance.first_difference(ours, theirs)
    at = lambda ids: ids[index] if index < len(ids) else "(end)"  # noqa: E731
    context = theirs[max(0, index - 4) : index + 4]
    return (
        f"{label}: ids differ at index {index} of {len(theirs)} (ours {len(ours)} ids): "
        f"ours {at(ours)} vs HF {at(theirs)}; "
        f"ours around: {[hf.id_to_token(i) for i in ours[max(0, index - 4) : index + 4]]}, "
        f"HF around: {[hf.id_to_token(i) for i in context]} = {hf.decode(context, skip_special_tokens=False)!r}"
    )


def assert_same_ids(pair: Pair, text: str, add_special_tokens: bool, label: str = "text") -> None:
    theirs = pair.hf.encode(text, add_special_tokens=add_special_tokens).ids
    ours = pair.ours.encode(text, add_special_tokens=add_special_tokens)
    assert ours == theirs, describe_difference(ours, theirs, pair.hf, f"{pair.name} {label} {text[:80]!r}")


def assert_same_on_texts(pair: Pair, labelled: list[tuple[str, str]], add_special_tokens: bool, decode: bool = False) -> None:
    """Each (label, text) of a corpus, ours against HF's batch encode (and decode, if asked)."""
    theirs = pair.hf.encode_batch([text for _, text in labelled], add_special_tokens=add_special_tokens)
    for (label, text), expected in zip(labelled, theirs):
        ours = pair.ours.encode(text, add_special_tokens=add_special_tokens)
        assert ours == expected.ids, describe_difference(ours, expected.ids, pair.hf, f"{pair.name} {label}")
        if decode:
            assert pair.ours.decode(ours) == pair.hf.decode(expected.ids)


def describe_offsets_difference(ours: Any, hf: Reference, text: str, add_special_tokens: bool, label: str) -> str | None:
    """Where `ours.encode_with_offsets` (a pipeline or a component session) first parts from
    HF's (id, offsets), with the text around it; None when they agree throughout."""
    encoding = hf.encode(text, add_special_tokens=add_special_tokens)
    expected = list(zip(encoding.ids, encoding.offsets))
    got = list(zip(*ours.encode_with_offsets(text, add_special_tokens)))
    at = conformance.first_difference(got, expected)
    if at is None:
        return None
    start = expected[at][1][0] if at < len(expected) else len(text)
    return f"{label}: token {at}: edgepop {got[at:at + 3]}, HF {expected[at:at + 3]}, near {text[max(0, start - 20):start + 20]!r}"


def build_test_component(name: str, world: str = TOKENIZER_WORLD) -> Path:
    """Build (once, and again when its source changes) a test-only component from tests/components/NAME.

    A component with a wit/ folder of its own targets a world there; others target edgepop's.
    """
    source = TEST_COMPONENTS_SRC / name
    out = BUILD_DIR / "test-components" / f"{name}.wasm"
    wit_dir = source / "wit" if (source / "wit").is_dir() else WIT_DIR
    sources = [*source.glob("*.py"), *wit_dir.glob("*.wit"), *(TOKENIZER_GUEST_DIR / "edgepop_tokenizer").glob("*.py")]
    if not out.exists() or out.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        componentize("guest", [source, TOKENIZER_GUEST_DIR], world, out, wit_dir)
    return out


def stdlib_kb(embedder):
    """The standard library's knowledge base that the retrieval report evaluates, opened.

    tools/retrieval_report.py builds it (several minutes) unless the one under build/kb
    is current, so benchmarks and the report measure the same knowledge base.
    """
    sys.path.insert(0, str(ROOT / "tools"))
    from retrieval_report import stdlib_kb as open_stdlib_kb

    return open_stdlib_kb(embedder)


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, not listening (so connecting to it is refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    """A loopback port nothing listens on, for a server started in another process."""
    with loopback_socket() as sock:
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """Run an ASGI app under a real uvicorn server on loopback (on `sock`, else a free port); yields its base URL."""
    sock = sock or loopback_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a PoP loads its components and knowledge base first
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server on {sock.getsockname()} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
