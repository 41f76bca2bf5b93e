"""The RAG component end to end: Wasm guest, host capabilities, chained tokenizer component.

The knowledge base is built from real standard-library packages with the real
embedding model; budgets are checked against the tokenizer component's own count.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from edgepop.kb.builder import build
from edgepop.kb.embedder import Embedder
from edgepop.kb.store import KnowledgeBase
from edgepop.errors import GuestTrap
from edgepop.rag import Capabilities, EmptyQuery, PromptOverBudget, RagComponent, RagError, UpstreamError
from edgepop.runtime import Runtime
from edgepop.tokenizer import TokenizerSession
from support import COMPONENTS_DIR, component_path

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder) -> KnowledgeBase:
    out = tmp_path_factory.mktemp("kb") / "json-kb"
    build([STDLIB / "json", STDLIB / "textwrap.py"], out, embedder=embedder)
    kb = KnowledgeBase.open(out, model=embedder.name, dimensions=embedder.dimensions)
    yield kb
    kb.close()


@pytest.fixture(scope="module")
def rag(runtime, embedder, kb) -> RagComponent:
    path = COMPONENTS_DIR / "rag.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make build`")
    return RagComponent(runtime, path, Capabilities(embedder, kb), runtime.load(component_path("llama-3.2")))


def test_retrieve_returns_what_the_host_index_finds_with_sources(rag, embedder, kb):
    query = "decode a JSON document from a string that may have extraneous data at the end"
    with rag.session() as session:
        retrieval = session.retrieve(query, k=5)
    want = kb.search(embedder.embed_query(query).vector, 5)
    assert [p.score for p in retrieval.passages] == pytest.approx([h.score for h in want], abs=1e-6)
    stored = kb.chunks([h.chunk_id for h in want])
    assert [(p.source.path, p.source.start_line, p.source.end_line, p.text) for p in retrieval.passages] == [
        (c.path, c.start_line, c.end_line, c.text) for c in stored
    ]
    assert retrieval.passages[0].source.path == "json/decoder.py"
    assert "raw_decode" in {p.source.qualified_name.split(".")[-1] for p in retrieval.passages if p.source.qualified_name}
    assert retrieval.query_tokens > 10 and not retrieval.query_truncated


def test_a_path_prefix_filter_keeps_only_those_paths(rag):
    with rag.session() as session:
        retrieval = session.retrieve("indent the lines of a text", k=4, path_prefix="json/")
    assert len(retrieval.passages) == 4
    assert all(p.source.path.startswith("json/") for p in retrieval.passages)


def test_augment_fits_the_budget_by_the_tokenizer_components_count(rag, runtime):
    prompt = "How does the JSON decoder report where a parse error happened?"
    with rag.session() as session:
        augmented = session.augment(prompt, 2000)
    with TokenizerSession(runtime.load(component_path("llama-3.2")).instantiate()) as tokenizer:
        assert augmented.tokens == tokenizer.count(augmented.prompt, add_special_tokens=False)
    assert 1000 < augmented.tokens <= 2000  # filled, not just under
    assert augmented.prompt.endswith(prompt)
    for passage in augmented.passages:
        assert f"[{passage.source.citation()}]" in augmented.prompt
    spans = sorted((p.source.path, p.source.start_line, p.source.end_line) for p in augmented.passages)
    for (path_a, _, end_a), (path_b, start_b, _) in zip(spans, spans[1:]):
        assert path_a != path_b or start_b > end_a, "overlapping passages must be merged"


def test_a_budget_too_small_for_any_passage_gives_the_prompt_alone_with_a_note(rag):
    prompt = "What does JSONDecoder.raw_decode return?"
    with rag.session() as session:
        augmented = session.augment(prompt, 20)
    assert augmented.prompt == prompt and augmented.passages == [] and augmented.tokens <= 20
    assert augmented.notes[-1] == "the token budget leaves no room for any passage: the prompt is sent alone"


def test_a_prompt_over_the_budget_is_refused_with_both_counts(rag):
    with rag.session() as session, pytest.raises(PromptOverBudget) as refused:
        session.augment("Explain JSON decoding in detail. " * 20, 50)
    assert refused.value.budget == 50 and refused.value.tokens > 50
    assert f"{refused.value.tokens} tokens, over the token budget of 50" in str(refused.value)


def test_a_query_longer_than_the_model_takes_is_truncated_and_says_so(rag, embedder):
    query = "how to parse a JSON object with nested arrays and escaped strings " * 40
    with rag.session() as session:
        retrieval = session.retrieve(query, k=3)
        augmented = session.augment(query, 4000)
    assert retrieval.query_truncated and retrieval.query_tokens == embedder.max_tokens
    assert augmented.notes[0].startswith("the prompt is longer than the embedding model takes")


@pytest.mark.parametrize("query", ["", "   \n\t "])
def test_an_empty_query_is_refused(rag, query):
    with rag.session() as session:
        with pytest.raises(EmptyQuery, match="query is empty"):
            session.retrieve(query, k=3)
        with pytest.raises(EmptyQuery):
            session.augment(query, 100)


@pytest.mark.parametrize("k", [0, 101])
def test_k_out_of_range_is_refused(rag, k):
    with rag.session() as session, pytest.raises(RagError, match="k must be between 1 and 100"):
        session.retrieve("json", k=k)


def test_the_same_session_keeps_serving_after_refusals(rag):
    with rag.session() as session:
        with pytest.raises(EmptyQuery):
            session.retrieve("", k=3)
        retrieval = session.retrieve("remove any common leading whitespace from every line", k=5)
    assert "dedent" in [p.source.qualified_name for p in retrieval.passages]


def _rag_over(runtime: Runtime, embedder: Embedder, kb: KnowledgeBase) -> RagComponent:
    return RagComponent(runtime, COMPONENTS_DIR / "rag.wasm", Capabilities(embedder, kb),
                        runtime.load(component_path("llama-3.2")))


def test_a_capability_that_fails_is_an_upstream_error_naming_it(rag, runtime, embedder, kb):
    closed = KnowledgeBase.open(kb.directory)
    closed.close()
    with _rag_over(runtime, embedder, closed).session() as session:
        with pytest.raises(UpstreamError, match=r"vector-search\.search: Internal \(.*closed"):
            session.retrieve("json", k=3)
    with rag.session() as session:
        assert session.retrieve("json", k=3).passages


def test_a_host_function_that_raises_traps_only_that_instance(rag, runtime, embedder, kb, tmp_path):
    """A KB whose chunk store is damaged under a running PoP: the search (memory-mapped
    vectors) still answers, the chunk lookup raises, the guest traps with the host
    function and the error named, and other requests are served."""
    damaged_dir = tmp_path / "damaged"
    shutil.copytree(kb.directory, damaged_dir)
    damaged = KnowledgeBase.open(damaged_dir)
    store = damaged_dir / "chunks.sqlite"
    store.write_bytes(bytes(store.stat().st_size))
    with _rag_over(runtime, embedder, damaged).session() as session:
        with pytest.raises(GuestTrap, match=r"host function get failed: DatabaseError"):
            session.retrieve("parse a JSON document", k=3)
    damaged.close()
    with rag.session() as session:
        assert session.retrieve("parse a JSON document", k=3).passages
