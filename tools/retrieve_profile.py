"""Where a retrieve's time goes: the model, the index, the boundary, the guest.

Usage: python tools/retrieve_profile.py [--requests N] [--k K]

Serves N retrieve requests as the RAG benchmark does (the standard library's knowledge
base, real docstring queries, a fresh prepared instance per request, requests 20 ms
apart) and stamps the time where control crosses the component boundary: when the guest
calls each host import, when the import's Python function starts and returns, when the
import returns to the guest, when the export returns to the host and when its result has
been lifted. It prints the median of each stretch between two stamps. The stamps wrap
edgepop.canonical's entry points from outside; they cost a few microseconds each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from wasmtime import _ffi as ffi

from edgepop import canonical
from edgepop.build import COMPONENTS_DIR
from edgepop.kb.embedder import Embedder
from edgepop.kb.queries import query_set
from edgepop.rag import Capabilities, RagComponent
from edgepop.runtime import Runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval_report import stdlib_kb  # noqa: E402 — the KB the report and the benchmark use

# What happens between one stamp and the next, by the pair of stamps.
STRETCHES = {
    ("start", "embed called"): "host: take an instance, lower the query; guest: ask for its embedding",
    ("embed called", "embed started"): "host: lift the query",
    ("embed started", "embed returned"): "embeddings.embed: tokenize and run the model",
    ("embed returned", "embed answered"): "host: lower the embedding",
    ("embed answered", "search called"): "guest: read the embedding, ask for the neighbours",
    ("search called", "search started"): "host: lift the vector",
    ("search started", "search returned"): "vector-search.search: HNSW, exact re-scoring",
    ("search returned", "search answered"): "host: lower the neighbours",
    ("search answered", "get called"): "guest: read the neighbours, ask for their chunks",
    ("get called", "get started"): "host: lift the ids",
    ("get started", "get returned"): "chunks.get: SQLite",
    ("get returned", "get answered"): "host: lower the chunks",
    ("get answered", "guest returned"): "guest: read the chunks, build and return the passages",
    ("guest returned", "lifted"): "host: lift the passages",
    ("lifted", "end"): "host: the typed Retrieval",
}


class Stamps:
    """Named times of the request in progress, on the thread that serves it (the pools'
    background thread warms instances up through the same code)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []
        self._thread = threading.get_ident()

    def __call__(self, name: str) -> None:
        if threading.get_ident() == self._thread:
            self.marks.append((name, time.perf_counter()))


def instrument(stamps: Stamps) -> None:
    """Stamp the host functions defined so far (by name: `embed`, `search`, `get`...), the
    component call, and its lifting."""
    for host_function in canonical._HOST_FUNCTIONS.values():
        host_function.function = _stamped(host_function.name, host_function.function, stamps)
    serve = canonical._HostFunction.serve

    def stamped_serve(self: Any, *args: Any) -> None:
        stamps(f"{self.name} called")
        serve(self, *args)
        stamps(f"{self.name} answered")

    call_component: Callable[..., Any] = ffi.wasmtime_component_func_call

    def stamped_call(*call_args: Any) -> Any:
        error = call_component(*call_args)
        stamps("guest returned")
        return error

    call = canonical.Signature.call

    def stamped_signature_call(self: Any, *call_args: Any) -> Any:
        value = call(self, *call_args)
        stamps("lifted")
        return value

    canonical._HostFunction.serve = stamped_serve  # type: ignore[method-assign]
    ffi.wasmtime_component_func_call = stamped_call
    canonical.Signature.call = stamped_signature_call  # type: ignore[method-assign]


def _stamped(name: str, function: Callable[..., Any], stamps: Stamps) -> Callable[..., Any]:
    def stamped(*args: Any) -> Any:
        stamps(f"{name} started")
        value = function(*args)
        stamps(f"{name} returned")
        return value

    return stamped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    embedder = Embedder()
    kb = stdlib_kb(embedder)
    queries = [q.text for q in query_set(kb, args.requests, seed=1)]
    runtime = Runtime()
    tokenizer = runtime.load(COMPONENTS_DIR / "llama-3.2.wasm")
    rag = RagComponent(runtime, COMPONENTS_DIR / "rag.wasm", Capabilities(embedder, kb), tokenizer)
    rag.prepare(4)
    stamps = Stamps()
    instrument(stamps)

    durations: dict[tuple[str, str], list[float]] = {}
    totals: list[float] = []
    sessions = []
    for i, query in enumerate(queries):
        while sessions:
            sessions.pop().close()
        time.sleep(0.02)  # as in the benchmark: the pools refill between requests
        stamps.marks.clear()
        stamps("start")
        sessions.append(rag.session())
        sessions[-1].retrieve(query, k=args.k)
        stamps("end")
        if i < 3:
            continue  # warm-up, as the benchmark's
        marks = stamps.marks
        for (a, ta), (b, tb) in zip(marks, marks[1:]):
            durations.setdefault((a, b), []).append(tb - ta)
        totals.append(marks[-1][1] - marks[0][1])
    runtime.close()
    kb.close()

    print(f"retrieve, k = {args.k}: {len(totals)} requests, median of each stretch\n")
    print("| stretch | p50 |\n|---|---:|")
    for pair, name in STRETCHES.items():
        if pair in durations:
            print(f"| {name} | {1000 * statistics.median(durations[pair]):.2f} ms |")
    for a, b in (pair for pair in durations if pair not in STRETCHES):
        print(f"| {a} -> {b} | {1000 * statistics.median(durations[(a, b)]):.2f} ms |")
    print(f"| **whole request** | **{1000 * statistics.median(totals):.2f} ms** |")


if __name__ == "__main__":
    main()
