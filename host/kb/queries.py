"""Retrieval queries no one here wrote: the first lines of the standard library's docstrings.

Each function or method whose docstring opens with a meaningful line yields a query; the
relevant document is that function's chunk in a knowledge base built with
strip_docstrings, so the words of the query are not in the text it must find. First
lines that open more than one docstring ("Return the value.") are dropped: their relevant
document would be ambiguous.
"""

from __future__ import annotations

import ast
import random
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .store import KnowledgeBase, StoredChunk

MIN_WORDS = 4
_WORD = re.compile(r"[A-Za-z]{2,}")
FUNCTION_KINDS = ("function", "method")


@dataclass(frozen=True)
class Docstring:
    """The first docstring line of one function, and where the function is defined."""

    path: str
    qualified_name: str
    line: int  # of the `def`
    first_line: str


@dataclass(frozen=True)
class Query:
    """A query and the one chunk that answers it."""

    text: str
    path: str
    qualified_name: str
    chunk_id: int


def function_docstrings(root: Path, paths: Iterable[str]) -> list[Docstring]:
    """The docstrings' first lines of the module-level functions and of the methods (of
    classes at any depth) in root/path for each path; files that do not parse are skipped."""
    found: list[Docstring] = []
    for path in sorted(paths):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse((root / path).read_bytes(), filename=path)
        except (SyntaxError, ValueError):
            continue
        for name, node in _functions(tree.body, ""):
            doc = ast.get_docstring(node)  # dedented, leading and trailing blank lines gone
            if doc:
                found.append(Docstring(path, name, node.lineno, doc.splitlines()[0].strip()))
    return found


def _functions(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Functions and methods with their qualified names ("Class.method"), as the chunker
    finds them: inside classes and compound statements (platform-dependent definitions),
    not inside function bodies."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")
        else:
            blocks = [getattr(node, field, []) for field in ("body", "orelse", "finalbody")]
            blocks += [part.body for part in [*getattr(node, "handlers", []), *getattr(node, "cases", [])]]
            for block in blocks:
                yield from _functions(block, prefix)


def meaningful(docstrings: Sequence[Docstring], min_words: int = MIN_WORDS) -> list[Docstring]:
    """Those whose first line has at least min_words words and opens no other docstring."""
    seen = Counter(d.first_line for d in docstrings)
    return [d for d in docstrings if seen[d.first_line] == 1 and len(_WORD.findall(d.first_line)) >= min_words]


def judge(docstrings: Iterable[Docstring], chunks: Iterable[StoredChunk]) -> list[Query]:
    """Queries for the docstrings whose function is exactly one function or method chunk
    (same path and qualified name, its lines spanning the `def`) that does not contain the
    query verbatim (a one-line `def f(): "doc"` keeps its docstring when stripped)."""
    by_name: dict[tuple[str, str], list[StoredChunk]] = {}
    for chunk in chunks:
        if chunk.kind in FUNCTION_KINDS:
            by_name.setdefault((chunk.path, chunk.qualified_name), []).append(chunk)
    queries = []
    for doc in docstrings:
        spanning = [c for c in by_name.get((doc.path, doc.qualified_name), ())
                    if c.start_line <= doc.line <= c.end_line and doc.first_line not in c.text]
        if len(spanning) == 1:
            queries.append(Query(doc.first_line, doc.path, doc.qualified_name, spanning[0].id))
    return queries


def query_set(kb: KnowledgeBase, count: int | None = None, seed: int = 0) -> list[Query]:
    """The queries of a KB built with strip_docstrings, from the Python files under its root
    that it holds: all of them, or count of them sampled with seed."""
    if not kb.manifest.strip_docstrings:
        raise ValueError(f"{kb.directory} keeps its docstrings: a query would find its own text")
    ids, _ = kb.vectors()
    chunks = [c for c in kb.chunks(ids) if c is not None]
    paths = [path for path in kb.source_files() if path.endswith(".py")]
    return sample(judge(meaningful(function_docstrings(Path(kb.manifest.root), paths)), chunks), count, seed)


def sample(queries: Sequence[Query], count: int | None = None, seed: int = 0) -> list[Query]:
    """count of the queries, the same ones for the same seed; all of them when count is None."""
    if count is None:
        return list(queries)
    if count > len(queries):
        raise ValueError(f"asked for {count} queries; there are {len(queries)}")
    return random.Random(seed).sample(list(queries), count)
