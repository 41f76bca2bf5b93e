"""The RAG component: `edge:ai/retriever` over the host's embeddings, vector search and chunks.

The heavy native work (the embedding model, the HNSW index, the chunk store) stays in
the host and is reached through WIT imports; the component decides what to ask for and
how to build the prompt, with `edgepop_rag`. Token budgets are counted by the
tokenizer component the host chains in for the prompt's model, so they are exact.

Bad input comes back as a `rag-error`; only a broken component traps.
"""

import traceback

from componentize_py_types import Err
from edgepop_rag import Passage, PromptOverBudget, fit, merge_overlapping
from wit_world import exports
from wit_world.exports.retriever import (
    Augmented,
    OverBudget,
    Passage as WitPassage,
    RagError_BadRequest,
    RagError_EmptyQuery,
    RagError_Internal,
    RagError_PromptOverBudget,
    RagError_Upstream,
    Retrieval,
    Source,
)
from wit_world.imports import chunks, embeddings, tokenizer, vector_search

MAX_K = 100
# Passages retrieved for `augment` before overlaps are merged and the budget is applied.
AUGMENT_CANDIDATES = 8


class _Upstream(Exception):
    """A host capability or the tokenizer answered with an error."""


def _call(what, function, *args):
    """Call an import; its `Err` becomes `_Upstream` naming the capability and the error."""
    try:
        return function(*args)
    except Err as e:
        error = e.value
        detail = getattr(error, "value", None)
        name = type(error).__name__.split("_", 1)[-1]
        raise _Upstream(f"{what}: {name}" + (f" ({detail})" if detail is not None else ""))


def _guarded(method):
    """Map failures to `rag-error`s: upstream errors by name, anything else as `internal`."""

    def call(*args):
        try:
            return method(*args)
        except Err:
            raise
        except _Upstream as e:
            raise Err(RagError_Upstream(str(e)))
        except MemoryError:
            raise
        except Exception as e:
            raise Err(RagError_Internal("".join(traceback.format_exception(e)).strip()))

    return call


def _search(query, k, filter):
    """The chunks nearest to `query` as passages, closest first, and the query's embedding."""
    if not query.strip():
        raise Err(RagError_EmptyQuery())
    if not 0 < k <= MAX_K:
        raise Err(RagError_BadRequest(f"k must be between 1 and {MAX_K}, got {k}"))
    embedding = _call("embeddings.embed", embeddings.embed, query)
    neighbors = _call("vector-search.search", vector_search.search, embedding.vector, k, filter)
    found = chunks.get([n.id for n in neighbors])
    passages = [
        Passage(c.text, n.score, c.path, c.qualified_name, c.start_line, c.end_line)
        for n, c in zip(neighbors, found)
        if c is not None
    ]
    return passages, embedding


def _wit(passage):
    source = Source(passage.path, passage.qualified_name, passage.start_line, passage.end_line)
    return WitPassage(text=passage.text, score=passage.score, source=source)


def _count(text):
    return _call("tokenizer.count", tokenizer.count, text, False)


class Retriever(exports.Retriever):
    @_guarded
    def retrieve(self, query, k, filter):
        passages, embedding = _search(query, k, filter)
        return Retrieval([_wit(p) for p in passages], embedding.tokens, embedding.truncated)

    @_guarded
    def augment(self, prompt, token_budget):
        if token_budget == 0:
            raise Err(RagError_BadRequest("the token budget must be at least 1"))
        passages, embedding = _search(prompt, AUGMENT_CANDIDATES, None)
        try:
            fitted = fit(prompt, merge_overlapping(passages), token_budget, _count)
        except PromptOverBudget as e:
            raise Err(RagError_PromptOverBudget(OverBudget(tokens=e.tokens, budget=e.budget)))
        notes = list(fitted.notes)
        if embedding.truncated:
            notes.insert(0, f"the prompt is longer than the embedding model takes: passages were "
                            f"retrieved for its first {embedding.tokens} tokens")
        return Augmented(fitted.text, fitted.tokens, [_wit(p) for p in fitted.passages], notes)
