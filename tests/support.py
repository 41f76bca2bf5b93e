"""Where the test suite finds its real inputs: fetched tokenizer files and built components."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from edgepop.build import TOKENIZER_GUEST_DIR, TOKENIZER_WORLD, WIT_DIR, componentize

ROOT = Path(__file__).resolve().parent.parent
# Tests share the AOT artefacts `make build` left, as the Makefile does.
os.environ.setdefault("EDGEPOP_CACHE_DIR", str(ROOT / "build" / "cache"))
TOKENIZERS_DIR = ROOT / "build" / "tokenizers"
BUILD_DIR = ROOT / "build"
COMPONENTS_DIR = BUILD_DIR / "components"
TEST_COMPONENTS_SRC = ROOT / "tests" / "components"

# Byte-level BPE tokenizers of real models (tools/fetch_tokenizers.py fetches them).
BYTE_LEVEL_MODELS = ["llama-3.2", "qwen3", "gpt2", "gpt-4o", "gpt-3.5-turbo", "deepseek-v3", "gpt-oss"]


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
