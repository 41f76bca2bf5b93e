"""Retrieval quality: recall@k and MRR of any retriever over queries with one relevant chunk each.

A retriever is any callable from (query text, k) to chunk ids, best first, so the
component pipeline, the host's vector index, exact search and BM25 are measured the same
way on the same queries. A retriever may also answer a batch at once (BatchRetriever):
evaluate then hands it the queries in batches, so that exact search scores a batch in one
matrix product, and the time reported still covers everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..progress import Progress
from .bm25 import BM25
from .embedder import Embedder
from .queries import Query
from .store import KnowledgeBase

Retriever = Callable[[str, int], Sequence[int]]

KS = (1, 5, 10)
MRR_AT = 10
BATCH = 64


@runtime_checkable
class BatchRetriever(Protocol):
    """A retriever that can also answer a batch of queries: results in the batch's order."""

    def __call__(self, text: str, k: int) -> Sequence[int]: ...

    def many(self, texts: Sequence[str], k: int) -> list[Sequence[int]]: ...


@dataclass(frozen=True)
class Metrics:
    """recall_at[k]: share of queries whose relevant chunk is in the top k; mrr: mean of
    1/rank of the relevant chunk, 0 when it is not in the top MRR_AT."""

    recall_at: dict[int, float]
    mrr: float
    queries: int
    seconds: float


def rank_metrics(ranks: Sequence[int | None], ks: Sequence[int] = KS) -> tuple[dict[int, float], float]:
    """recall@k for each k and MRR@10 from the 1-based rank of each query's relevant chunk
    (None: not retrieved)."""
    n = len(ranks)
    if n == 0:
        raise ValueError("no queries")
    recall = {k: sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}
    mrr = sum(1 / r for r in ranks if r is not None and r <= MRR_AT) / n
    return recall, mrr


def evaluate(queries: Sequence[Query], retriever: Retriever, ks: Sequence[int] = KS, batch: int = BATCH) -> Metrics:
    """Ask the retriever for the top max(ks, 10) chunks of every query and score where the
    relevant chunk came."""
    depth = max(*ks, MRR_AT)
    texts = [q.text for q in queries]
    start = time.perf_counter()
    if isinstance(retriever, BatchRetriever):
        results = [ids for at in range(0, len(texts), batch) for ids in retriever.many(texts[at:at + batch], depth)]
    else:
        results = [retriever(text, depth) for text in texts]
    seconds = time.perf_counter() - start
    ranks = [_rank(q.chunk_id, ids[:depth]) for q, ids in zip(queries, results, strict=True)]
    recall, mrr = rank_metrics(ranks, ks)
    return Metrics(recall, mrr, len(queries), seconds)


def _rank(relevant: int, ids: Sequence[int]) -> int | None:
    for position, chunk_id in enumerate(ids, 1):
        if chunk_id == relevant:
            return position
    return None


class ExactRetriever:
    """Brute-force cosine search: a batch of query embeddings times every stored vector,
    as one matrix product. The ground truth the approximate index is held to."""

    def __init__(self, kb: KnowledgeBase, embedder: Embedder) -> None:
        self.embedder = embedder
        self.ids, self.vectors = kb.vectors()
        self.vectors = np.asarray(self.vectors, dtype=np.float32)

    def __call__(self, text: str, k: int) -> list[int]:
        return self.many([text], k)[0]

    def many(self, texts: Sequence[str], k: int) -> list[list[int]]:
        scores = self.embedder.embed(list(texts)).vectors @ self.vectors.T
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        results = []
        for row, candidates in zip(scores, top):
            best = candidates[np.lexsort((self.ids[candidates], -row[candidates]))]
            results.append([int(self.ids[i]) for i in best])
        return results


class IndexRetriever:
    """The knowledge base's HNSW index (usearch)."""

    def __init__(self, kb: KnowledgeBase, embedder: Embedder) -> None:
        self.kb = kb
        self.embedder = embedder

    def __call__(self, text: str, k: int) -> list[int]:
        return [hit.chunk_id for hit in self.kb.search(self.embedder.embed_query(text).vector, k)]


class BM25Retriever:
    """The lexical baseline over the same chunk texts."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.index = BM25.from_kb(kb)

    def __call__(self, text: str, k: int) -> list[int]:
        return [chunk_id for chunk_id, _ in self.index.search(text, k)]


def report(queries: Sequence[Query], retrievers: Mapping[str, Retriever], *, exact: str = "exact",
           index: str = "usearch", progress: Progress | None = None) -> str:
    """Every retriever on the same queries, in the mapping's order, as a Markdown table
    (render), each one a stage of progress."""
    progress = progress or Progress(len(retrievers), quiet=True)
    results: dict[str, Metrics] = {}
    for name, retriever in retrievers.items():
        with progress.stage(f"{name}: {len(queries):,} queries"):
            results[name] = evaluate(queries, retriever)
    return render(results, exact, index)


def render(results: Mapping[str, Metrics], exact: str = "exact", index: str = "usearch") -> str:
    """A Markdown table (retriever | recall@k... | MRR@10 | queries | time), and how much of
    exact search's recall@10 the approximate index keeps (when both are present)."""
    ks = sorted(next(iter(results.values())).recall_at)
    lines = ["| retriever | " + " | ".join(f"recall@{k}" for k in ks) + f" | MRR@{MRR_AT} | queries | time |",
             "|---|" + "---:|" * (len(ks) + 3)]
    for name, m in results.items():
        recall = " | ".join(f"{m.recall_at[k]:.3f}" for k in ks)
        per_query = m.seconds / m.queries * 1e3
        lines.append(f"| {name} | {recall} | {m.mrr:.3f} | {m.queries:,} | {m.seconds:.1f} s ({per_query:.2f} ms/query) |")
    if exact in results and index in results and results[exact].recall_at.get(10):
        ratio = results[index].recall_at[10] / results[exact].recall_at[10]
        lines += ["", f"{index} recall@10 / {exact} recall@10 = {ratio:.4f}"]
    return "\n".join(lines)
