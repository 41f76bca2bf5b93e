"""Measure retrieval quality on the standard library and write the table the README quotes.

Usage: python tools/retrieval_report.py [--queries N] [--seed S] [--rebuild]

The knowledge base (build/kb/stdlib-eval) holds the standard library this interpreter
ships with, without site-packages (not the standard library) and the test suites (the
library's, not the library), docstrings stripped. The queries are the first lines of
those docstrings, each answered by its function's chunk (edgepop.kb.queries). The KB is
built once and reused while it is what this code would build from the files on disk;
a build takes most of an hour on a shared 2-core machine (about 10 chunks/s).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path

import numpy as np

from edgepop.build import COMPONENTS_DIR
from edgepop.kb.builder import build, embedding_text
from edgepop.kb.chunking import Chunk, chunk_source
from edgepop.kb.embedder import Embedder
from edgepop.kb.evaluation import BM25Retriever, ExactRetriever, IndexRetriever, Retriever, report
from edgepop.kb.queries import query_set
from edgepop.kb.sources import read_sources
from edgepop.kb.store import HNSW, MANIFEST, QUANTIZATION, KnowledgeBase, KnowledgeBaseError
from edgepop.progress import Progress
from edgepop.rag import Capabilities, RagComponent
from edgepop.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench"
KB_DIR = ROOT / "build" / "kb" / "stdlib-eval"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
EXCLUDE = ("site-packages", "test", "tests", "idle_test")
MIN_QUERIES = 2000
COMPONENT = "component pipeline (Wasm)"
EXACT, INDEX, LEXICAL = "exact (numpy)", "usearch (HNSW)", "BM25"
# Every this-many-th chunk is embedded again to check a KB is current.
PROBE_EVERY = 500

# A retriever that needs the open KB and the embedder, made once they exist.
RetrieverFactory = Callable[[KnowledgeBase, Embedder], Retriever]


def stdlib_kb(embedder: Embedder, rebuild: bool = False) -> KnowledgeBase:
    """The evaluation KB, built unless the one at KB_DIR is current."""
    if not rebuild and (KB_DIR / MANIFEST).exists():
        try:
            kb = KnowledgeBase.open(KB_DIR, model=embedder.name, dimensions=embedder.dimensions)
        except KnowledgeBaseError as e:
            print(f"rebuilding: {e}", file=sys.stderr)
        else:
            why = _stale(kb, embedder)
            if why is None:
                print(f"reusing {KB_DIR} ({kb.manifest.chunk_count:,} chunks, built {kb.manifest.built_at})",
                      file=sys.stderr)
                return kb
            kb.close()
            print(f"rebuilding {KB_DIR}: {why}", file=sys.stderr)
    report = build([STDLIB], KB_DIR, embedder=embedder, strip_docstrings=True, exclude=EXCLUDE)
    print(f"built {KB_DIR}: {report.files:,} files, {report.chunks:,} chunks, "
          f"{report.chunks_per_second:.0f} chunks/s embedded", file=sys.stderr)
    return KnowledgeBase.open(KB_DIR, model=embedder.name, dimensions=embedder.dimensions)


def _stale(kb: KnowledgeBase, embedder: Embedder) -> str | None:
    """Why the KB differs from what this code would build now, or None. The chunks are
    compared whole (the chunker is cheap) and the vectors on a sample (the model is not)."""
    m = kb.manifest
    if (m.root, m.exclude, m.strip_docstrings) != (str(STDLIB), list(EXCLUDE), True):
        return f"built from {m.root} excluding {m.exclude}, strip_docstrings={m.strip_docstrings}"
    if m.model_sha256 != embedder.model_sha256:
        return "built with other model weights"
    if (m.hnsw, m.quantization) != (HNSW, QUANTIZATION):
        return f"its HNSW graph was built with other settings ({m.quantization}, {m.hnsw})"
    found = read_sources([STDLIB], STDLIB, EXCLUDE).files
    if {p: f.sha256 for p, f in found.items()} != {p: f.sha256 for p, f in kb.source_files().items()}:
        return "the standard library's files changed"
    ids, vectors = kb.vectors()
    stored = kb.chunks(ids)
    chunks = [c for f in found.values() for c in chunk_source(f.path, f.text, strip_docstrings=True)]
    if [_fields(c) for c in chunks] != [_fields(c) for c in stored]:
        return "the chunker cuts the files differently now"
    probe = list(range(0, len(stored), PROBE_EVERY))
    again = embedder.embed([embedding_text(stored[i]) for i in probe]).vectors
    if not np.allclose(again, vectors[probe], atol=1e-4):
        return "chunks embed differently now"
    return None


def _fields(chunk: Chunk) -> tuple:
    """A chunk's fields, without the id a stored chunk has."""
    return tuple(getattr(chunk, f.name) for f in fields(Chunk))


class ComponentRetriever:
    """The component pipeline: every query through the Wasm RAG component, which embeds,
    searches and fetches through the host's capabilities, one request after another.

    The component answers with passages (text and source), so each is mapped back to its
    chunk by path and line range, which identify a chunk within a knowledge base.
    """

    def __init__(self, kb: KnowledgeBase, embedder: Embedder) -> None:
        self.runtime = Runtime()
        tokenizer = self.runtime.load(COMPONENTS_DIR / "llama-3.2.wasm")
        rag = RagComponent(self.runtime, COMPONENTS_DIR / "rag.wasm", Capabilities(embedder, kb), tokenizer)
        self.session = rag.session()
        ids, _ = kb.vectors()
        self.chunk_ids = {(c.path, c.start_line, c.end_line): c.id for c in kb.chunks([int(i) for i in ids]) if c}

    def __call__(self, text: str, k: int) -> list[int]:
        passages = self.session.retrieve(text, k).passages
        return [self.chunk_ids[(p.source.path, p.source.start_line, p.source.end_line)] for p in passages]


def run(count: int | None = None, seed: int = 0, rebuild: bool = False,
        extra_retrievers: Mapping[str, RetrieverFactory] | None = None) -> str:
    """The report: every retriever on the same queries.

    extra_retrievers: name -> factory of more retrievers to measure, listed first; the
    component pipeline (query -> Wasm RAG component -> host capabilities) plugs in here.
    """
    embedder = Embedder()
    with stdlib_kb(embedder, rebuild) as kb:
        factories: dict[str, RetrieverFactory] = {
            **(extra_retrievers or {}),
            EXACT: ExactRetriever,
            INDEX: IndexRetriever,
            LEXICAL: lambda kb, _: BM25Retriever(kb),
        }
        progress = Progress(2 + len(factories))
        with progress.stage("extracting the docstring queries"):
            queries = query_set(kb, count, seed)
        if len(queries) < MIN_QUERIES:
            raise SystemExit(f"only {len(queries):,} queries; the evaluation needs at least {MIN_QUERIES:,}")
        with progress.stage("preparing the retrievers"):
            retrievers = {name: make(kb, embedder) for name, make in factories.items()}
        table = report(queries, retrievers, exact=EXACT, index=INDEX, progress=progress)
        m = kb.manifest
        header = [
            f"Machine: {platform.machine()}, {os.cpu_count()} cores; run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
            "",
            f"Knowledge base: the standard library of Python {platform.python_version()} ({m.source_files:,} files "
            f"without {', '.join(EXCLUDE)}), {m.chunk_count:,} chunks, docstrings stripped; "
            f"{m.model}, index {m.quantization}.",
            f"Queries: {len(queries):,} function and method docstrings' first lines "
            f"({'all' if count is None else f'sampled with seed {seed}'}), each answered by its function's chunk.",
            "Time: all the queries, embedding them included; exact search takes 64 at a time.",
            "",
        ]
        return "\n".join(header) + "\n" + table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, help="sample this many queries (default: all of them)")
    parser.add_argument("--seed", type=int, default=0, help="of the sample (default: %(default)s)")
    parser.add_argument("--rebuild", action="store_true", help="build the KB even if it is current")
    args = parser.parse_args(argv)
    if args.queries is not None and args.queries < MIN_QUERIES:
        parser.error(f"--queries must be at least {MIN_QUERIES:,}")
    report = run(args.queries, args.seed, args.rebuild, extra_retrievers={COMPONENT: ComponentRetriever})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "retrieval.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
