"""RAG components: the host capabilities they import, and a typed client for what they export.

A RAG component (world `rag-component`) imports `embeddings`, `vector-search` and
`chunks`, which the host serves natively from one `Embedder` and one memory-mapped
`KnowledgeBase` shared by every instance, and `tokenizer`, which the host serves by
forwarding to an instance of the tokenizer component for the prompt's model: the
tokenize -> retrieve chain, with token budgets counted by the model's own tokenizer.

Host functions are served through `canonical.define`: records come in with snake_case
attributes and go out as any object or dict with those names, a `result` is `Ok(...)`
or `Err(...)`, a variant is a `Variant(tag, payload)`. A host function never raises: a
failure becomes the interface's error case, so the guest can report it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from wasmtime.component import Linker, Record, Variant

from .canonical import Err, Ok, define
from .errors import EdgepopError
from .kb.embedder import Embedder, EmbeddingError, QueryEmbedding
from .kb.store import KnowledgeBase
from .runtime import Instance, LoadedComponent, Runtime
from .tokenizer import INTERFACE as TOKENIZER_INTERFACE
from .tokenizer import TokenizerSession
from .tokenizer import warm_up as warm_up_tokenizer

PACKAGE = "edge:ai/{}@0.2.0"
INTERFACE = PACKAGE.format("retriever")

# What a prepared RAG instance retrieves before any request reaches it (see warm_up).
WARM_UP_QUERY = "How do I read a configuration file and parse its sections?"
# As many passages as a default retrieve asks for: the request then finds the pages that
# lowering ten chunks touches already copied (35 fewer page faults than with 3, measured).
WARM_UP_K = 10


def warm_up(instance: Instance) -> None:
    """Prepare a RAG instance (LoadedComponent.prepare) with one fixed retrieval, no request's data."""
    instance.call(INTERFACE, "retrieve", WARM_UP_QUERY, WARM_UP_K, None)


class RagError(EdgepopError):
    """The RAG component refused the request; the message says why."""


class EmptyQuery(RagError):
    def __init__(self) -> None:
        super().__init__("the query is empty: there is nothing to retrieve for")


class PromptOverBudget(RagError):
    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(f"the prompt alone is {tokens} tokens, over the token budget of {budget}")
        self.tokens, self.budget = tokens, budget


class UpstreamError(RagError):
    """A host capability or the chained tokenizer failed under the component."""


@dataclass(frozen=True)
class Source:
    path: str
    qualified_name: str | None
    start_line: int
    end_line: int

    def citation(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"


@dataclass(frozen=True)
class Passage:
    text: str
    score: float
    source: Source


@dataclass(frozen=True)
class Retrieval:
    passages: list[Passage]
    query_tokens: int
    query_truncated: bool


@dataclass(frozen=True)
class Augmented:
    prompt: str
    tokens: int
    passages: list[Passage]
    notes: list[str]


# The tokenizer session that the component's `tokenizer` imports go to, for the call in progress.
_chained_tokenizer: contextvars.ContextVar["ChainedTokenizer"] = contextvars.ContextVar("chained_tokenizer")


class Capabilities:
    """What the host lends RAG components: the embedding model and a knowledge base."""

    def __init__(self, embedder: Embedder, kb: KnowledgeBase) -> None:
        self.embedder = embedder
        self.kb = kb
        # Warm-ups (see warm_up) run the whole retrieval in the guest, but the model only
        # once: prepared instances are made while requests are served, on the same cores.
        self._warm_up_embedding: QueryEmbedding | None = None

    def linker(self, runtime: Runtime) -> Linker:
        """A linker with WASI and the four interfaces a `rag-component` imports."""
        linker = runtime.new_linker()
        root = linker.root()
        with root.add_instance(PACKAGE.format("embeddings")) as embeddings:
            define(embeddings, "describe", self._describe)
            define(embeddings, "embed", self._embed)
        with root.add_instance(PACKAGE.format("vector-search")) as search:
            define(search, "search", self._search)
        with root.add_instance(PACKAGE.format("chunks")) as chunks:
            define(chunks, "get", self.kb.chunks)
        with root.add_instance(TOKENIZER_INTERFACE) as tokenizer:
            for function in ("describe", "encode", "encode-with-offsets", "encode-batch", "count", "decode"):
                define(tokenizer, function, _forward_to_tokenizer(function))
        return linker

    def _describe(self) -> dict[str, Any]:
        e = self.embedder
        return {"name": e.name, "dimensions": e.dimensions, "max_tokens": e.max_tokens}

    def _embed(self, text: str) -> Ok[dict[str, Any]] | Err[Variant]:
        try:
            query = self._embed_query(text)
        except EmbeddingError:
            return Err(Variant("empty-text"))
        except Exception as e:  # noqa: BLE001 — a host function must answer, not raise
            return Err(Variant("internal", f"{type(e).__name__}: {e}"))
        return Ok({"vector": pack_vector(query.vector), "tokens": query.tokens, "truncated": query.truncated})

    def _embed_query(self, text: str) -> QueryEmbedding:
        if text != WARM_UP_QUERY:
            return self.embedder.embed_query(text)
        if self._warm_up_embedding is None:
            self._warm_up_embedding = self.embedder.embed_query(text)
        return self._warm_up_embedding

    def _search(self, query: str, k: int, filter: Record | None) -> Ok[list[dict[str, Any]]] | Err[Variant]:
        try:
            vector = unpack_vector(query, self.kb.manifest.dimensions)
        except ValueError as e:
            return Err(Variant("malformed-vector", str(e)))
        prefix = filter.path_prefix if filter is not None else None
        try:
            hits = self.kb.search(vector, k, path_prefix=prefix)
        except Exception as e:  # noqa: BLE001
            return Err(Variant("internal", f"{type(e).__name__}: {e}"))
        return Ok([{"id": hit.chunk_id, "score": float(hit.score)} for hit in hits])


def _forward_to_tokenizer(function: str) -> Callable[..., Any]:
    """A host function that calls `function` of the tokenizer session chained to this call."""

    def forward(*args: Any) -> Any:
        chain = _chained_tokenizer.get(None)
        if chain is None:
            return Err(Variant("internal", "no tokenizer component is chained to this RAG instance"))
        try:
            return chain.session().instance.call(TOKENIZER_INTERFACE, function, *args)
        except EdgepopError as e:
            return Err(Variant("internal", f"the tokenizer component failed: {e}"))

    return forward


class RagComponent:
    """A RAG component loaded with its capabilities, and the tokenizer component it counts with."""

    def __init__(self, runtime: Runtime, path: Path, capabilities: Capabilities, tokenizer: LoadedComponent) -> None:
        self.capabilities = capabilities
        self.loaded = runtime.load(path, capabilities.linker(runtime))
        self.tokenizer = tokenizer

    def prepare(self, count: int) -> None:
        """Keep `count` fresh, warmed instances of the component and of its tokenizer made ahead."""
        self.loaded.prepare(count, warm_up)
        self.tokenizer.prepare(count, warm_up_tokenizer)

    def session(self) -> "RagSession":
        """A fresh instance of the RAG component, and of its tokenizer once it counts, for one request."""
        return RagSession(self.loaded.instantiate(), ChainedTokenizer(self.tokenizer))


class ChainedTokenizer:
    """The tokenizer instance a RAG session counts with, made on first use: `retrieve` never counts."""

    def __init__(self, loaded: LoadedComponent) -> None:
        self._loaded = loaded
        self._session: TokenizerSession | None = None

    def session(self) -> TokenizerSession:
        if self._session is None:
            self._session = TokenizerSession(self._loaded.instantiate())
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class RagSession:
    """One request's instances: the RAG component and the tokenizer chained to it."""

    def __init__(self, instance: Instance, tokenizer: ChainedTokenizer) -> None:
        self.instance = instance
        self.tokenizer = tokenizer

    def retrieve(self, query: str, k: int = 10, path_prefix: str | None = None) -> Retrieval:
        """The `k` passages closest to `query`, optionally only from paths starting with `path_prefix`."""
        filter = {"path_prefix": path_prefix} if path_prefix is not None else None
        retrieval = self._call("retrieve", query, k, filter)
        return Retrieval([_passage(p) for p in retrieval.passages], retrieval.query_tokens, retrieval.query_truncated)

    def augment(self, prompt: str, token_budget: int) -> Augmented:
        """`prompt` with related passages as cited context, in at most `token_budget` tokens."""
        augmented = self._call("augment", prompt, token_budget)
        return Augmented(augmented.prompt, augmented.tokens, [_passage(p) for p in augmented.passages],
                         list(augmented.notes))

    def close(self) -> None:
        self.instance.close()
        self.tokenizer.close()

    def __enter__(self) -> "RagSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, function: str, *args: Any) -> Any:
        with _chained(self.tokenizer):
            result = self.instance.call(INTERFACE, function, *args)
        if isinstance(result, Ok):
            return result.value
        error = result.value
        if error.tag == "empty-query":
            raise EmptyQuery()
        if error.tag == "prompt-over-budget":
            raise PromptOverBudget(error.payload.tokens, error.payload.budget)
        if error.tag == "bad-request":
            raise RagError(error.payload)
        if error.tag == "upstream":
            raise UpstreamError(error.payload)
        raise RagError(f"the RAG component failed: {error.payload}")


@contextmanager
def _chained(tokenizer: ChainedTokenizer) -> Iterator[None]:
    token = _chained_tokenizer.set(tokenizer)
    try:
        yield
    finally:
        _chained_tokenizer.reset(token)


def pack_vector(vector: np.ndarray) -> str:
    """WIT's `packed-vector`: little-endian f32s, 8 hex digits each."""
    return np.asarray(vector, dtype="<f4").tobytes().hex()


def unpack_vector(packed: str, dimensions: int) -> np.ndarray:
    """The vector in a `packed-vector`; ValueError names what is wrong with it."""
    if len(packed) != 8 * dimensions:
        raise ValueError(f"expected {dimensions} f32s ({8 * dimensions} hex digits), got {len(packed)} characters")
    try:
        data = bytes.fromhex(packed)
    except ValueError:
        raise ValueError("a packed vector must be hex digits only") from None
    vector = np.frombuffer(data, dtype="<f4")
    if not np.isfinite(vector).all():
        raise ValueError("a packed vector must hold finite numbers")
    return vector


def _passage(p: Any) -> Passage:
    s = p.source
    return Passage(p.text, p.score, Source(s.path, s.qualified_name, s.start_line, s.end_line))

