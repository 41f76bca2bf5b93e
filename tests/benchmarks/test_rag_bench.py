"""RAG latency on the whole standard library's knowledge base, served as a PoP serves it.

Queries are real: first lines of standard-library docstrings (the evaluation's query
set), cycled through so no round repeats the previous one. Requests get fresh, prepared
instances of the RAG component and of the Llama 3.2 tokenizer it counts budgets with.
"""

from __future__ import annotations

import itertools
import time

import pytest

from edgepop.kb.embedder import Embedder
from edgepop.kb.queries import query_set
from edgepop.kb.store import KnowledgeBase
from edgepop.rag import Capabilities, RagComponent, RagSession
from edgepop.runtime import Runtime
from support import COMPONENTS_DIR, component_path, stdlib_kb

GROUP = "latency: RAG, standard-library knowledge base"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def kb(embedder) -> KnowledgeBase:
    kb = stdlib_kb(embedder)
    yield kb
    kb.close()


@pytest.fixture(scope="module")
def queries(kb) -> itertools.cycle:
    return itertools.cycle([q.text for q in query_set(kb, 300, seed=1)])


@pytest.fixture(scope="module")
def rag(embedder, kb) -> RagComponent:
    runtime = Runtime()
    tokenizer = runtime.load(component_path("llama-3.2"))
    rag = RagComponent(runtime, COMPONENTS_DIR / "rag.wasm", Capabilities(embedder, kb), tokenizer)
    rag.prepare(4)
    yield rag
    runtime.close()


def _per_request(benchmark, rag: RagComponent, request, rounds: int) -> None:
    """Time `request(session)` on a fresh prepared session per round; teardown is not timed."""
    sessions: list[RagSession] = []

    def setup():
        while sessions:
            sessions.pop().close()
        time.sleep(0.02)  # requests arrive apart, so the pools refill in the background
        return (), {}

    def one_request():
        sessions.append(rag.session())
        return request(sessions[-1])

    benchmark.group = GROUP
    assert benchmark.pedantic(one_request, setup=setup, rounds=rounds, iterations=1, warmup_rounds=3)
    setup()


def test_retrieve_k10(benchmark, rag, queries) -> None:
    """Embed the query, search the HNSW index, fetch 10 chunks: one request, through the component."""
    _per_request(benchmark, rag, lambda s: s.retrieve(next(queries), k=10).passages, rounds=300)


def test_augment_budget_2000(benchmark, rag, queries) -> None:
    """Retrieve, merge, and fit a 2,000-token budget counted by the tokenizer component."""
    _per_request(benchmark, rag, lambda s: s.augment(next(queries), 2000).prompt, rounds=100)


def test_embed_query_native(benchmark, embedder, queries) -> None:
    """The host's share of retrieve: the embedding model on one query."""
    benchmark.group = GROUP
    benchmark(lambda: embedder.embed_query(next(queries)))


def test_search_k10_native(benchmark, embedder, kb, queries) -> None:
    """The host's share of retrieve: the HNSW search for 10 neighbours."""
    vectors = itertools.cycle([embedder.embed_query(next(queries)).vector for _ in range(100)])
    benchmark.group = GROUP
    benchmark(lambda: kb.search(next(vectors), 10))


def test_kb_open(benchmark, embedder, kb) -> None:
    """A PoP starting to serve the knowledge base: manifest checks and memory maps, no full read."""
    path = kb.directory
    benchmark.group = GROUP
    benchmark.pedantic(
        lambda: KnowledgeBase.open(path, model=embedder.name, dimensions=embedder.dimensions).close(),
        rounds=30, iterations=1,
    )
