"""Building and updating knowledge bases: sources -> chunks -> embeddings -> the files store.py reads.

Both write a complete new KB directory beside the target and then swap it in, so a
failed build or a crash at any point leaves the previous KB (or nothing) in place, never
half of one. An update starts from a copy of the SQLite database and of the index,
removes the chunks of changed and removed files, embeds only new and changed files, and
numbers their chunks after every id ever used: an id never names two different chunks.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sqlite3
import tempfile
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from usearch.index import Index

from ..files import fsync
from ..progress import Counter, Progress
from ..stopwatch import timed
from .chunking import Chunk, chunk_source
from .embedder import Embedder, Embeddings
from .sources import SourceFile, read_sources, source_root
from .store import (
    CHUNKS, DATA_FILES, HNSW, IDS, INDEX, MANIFEST, METRIC, QUANTIZATION, QUANTIZATIONS, SCHEMA, VECTORS, FileEntry,
    KnowledgeBase, KnowledgeBaseError, Manifest, file_sha256,
)

# Chunks per call into the embedder: the progress counter moves this often.
EMBED_SLICE = 256
STAGES = ("read+chunk", "embed", "index", "write")


@dataclass(frozen=True)
class BuildReport:
    path: Path
    files: int
    skipped: dict[str, str]  # path -> why (binary, not UTF-8, unreadable)
    chunks: int
    truncated: int  # chunks longer than the model takes: only their head was embedded
    seconds: dict[str, float]  # per stage of STAGES

    @property
    def chunks_per_second(self) -> float:
        """Embedding throughput, the stage that dominates a build."""
        return self.chunks / self.seconds["embed"] if self.seconds["embed"] else 0.0


@dataclass(frozen=True)
class UpdateReport:
    path: Path
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    skipped: dict[str, str]
    chunks_added: int
    chunks_removed: int
    chunks: int  # in the KB after the update
    seconds: dict[str, float]


def build(
    sources: Sequence[Path],
    out: Path,
    *,
    embedder: Embedder,
    quantization: str = QUANTIZATION,
    strip_docstrings: bool = False,
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
) -> BuildReport:
    """Build a KB of `sources` at `out`, replacing the KB there if there is one.

    `exclude`: glob patterns of files and directories to leave out (sources.read_sources).
    """
    if quantization not in QUANTIZATIONS:
        raise KnowledgeBaseError(f"unknown quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
    out = Path(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / MANIFEST).exists())):
        raise KnowledgeBaseError(f"{out} exists and is not a knowledge base: refusing to replace it")
    root = source_root(sources)
    progress = progress or Progress(len(STAGES))
    seconds: dict[str, float] = {}
    with timed(seconds, "read+chunk"), progress.stage(f"reading and chunking the sources under {root}"):
        found = read_sources(sources, root, exclude)
        chunks = _chunk_files(found.files.values(), strip_docstrings)
    with timed(seconds, "embed"), progress.stage(f"embedding {len(chunks):,} chunks", len(chunks), "chunks") as done:
        embedded = _embed(chunks, embedder, done)
    ids = np.arange(len(chunks), dtype=np.int64)
    with timed(seconds, "index"), progress.stage(f"building the HNSW index ({quantization})"):
        index = Index(ndim=embedder.dimensions, metric=METRIC, dtype=quantization,
                      connectivity=HNSW.connectivity, expansion_add=HNSW.expansion_add)
        _add(index, ids, embedded.vectors)
    with timed(seconds, "write"), progress.stage(f"writing {out}"), _staging(out) as staging:
        db = _create_database(staging / CHUNKS)
        _insert(db, ids, chunks, embedded, found.files.values())
        _finish(db, index, staging, embedder.dimensions)
        manifest = Manifest(
            model=embedder.name, model_sha256=embedder.model_sha256, dimensions=embedder.dimensions,
            max_tokens=embedder.max_tokens, metric=METRIC, quantization=quantization, chunk_count=len(chunks),
            next_chunk_id=len(chunks), source_files=len(found.files), root=str(root),
            sources=[os.path.abspath(s) for s in sources], exclude=list(exclude), strip_docstrings=strip_docstrings,
            built_at=_now(), updated_at=None, files=_checksums(staging), hnsw=HNSW,
        )
        _install(staging, manifest, out)
    return BuildReport(out, len(found.files), found.skipped, len(chunks), sum(embedded.truncated), seconds)


def update(kb_dir: Path, sources: Sequence[Path], *, embedder: Embedder, progress: Progress | None = None
           ) -> UpdateReport:
    """Bring the KB at kb_dir up to date with `sources` (read as the KB was built: same
    root, exclusions and docstring stripping), embedding only new and changed files."""
    kb_dir = Path(kb_dir)
    with KnowledgeBase.open(kb_dir, model=embedder.name, dimensions=embedder.dimensions) as kb:
        kb.verify()  # what is built on must be sound: new checksums would hide old damage
        old = kb.manifest
        known = kb.source_files()
    progress = progress or Progress(len(STAGES))
    seconds: dict[str, float] = {}
    with timed(seconds, "read+chunk"), progress.stage(f"reading the sources under {old.root}"):
        found = read_sources(sources, Path(old.root), old.exclude)
        added = [p for p in found.files if p not in known]
        changed = [p for p in found.files if p in known and known[p].sha256 != found.files[p].sha256]
        removed = [p for p in known if p not in found.files]
        chunks = _chunk_files([found.files[p] for p in sorted(added + changed)], old.strip_docstrings)
    unchanged = len(found.files) - len(added) - len(changed)
    if not (added or changed or removed):
        return UpdateReport(kb_dir, [], [], [], unchanged, found.skipped, 0, 0, old.chunk_count, seconds)
    with timed(seconds, "embed"), progress.stage(f"embedding {len(chunks):,} chunks", len(chunks), "chunks") as done:
        embedded = _embed(chunks, embedder, done)
    ids = np.arange(old.next_chunk_id, old.next_chunk_id + len(chunks), dtype=np.int64)
    with _staging(kb_dir) as staging:
        with timed(seconds, "index"), progress.stage("updating the HNSW index"):
            shutil.copyfile(kb_dir / CHUNKS, staging / CHUNKS)
            db = _open_database(staging / CHUNKS)
            stale = changed + removed
            gone = [chunk_id for path in stale for (chunk_id,) in
                    db.execute("SELECT id FROM chunks WHERE path = ?", (path,))]
            index = _load_index(kb_dir / INDEX)
            index.expansion_add = old.hnsw.expansion_add  # a setting of the session, not saved in the file
            if gone:
                index.remove(gone)
            _add(index, ids, embedded.vectors)
        with timed(seconds, "write"), progress.stage(f"writing {kb_dir}"):
            db.executemany("DELETE FROM chunks WHERE path = ?", [(p,) for p in stale])
            db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in stale])
            _insert(db, ids, chunks, embedded, [found.files[p] for p in added + changed])
            _finish(db, index, staging, old.dimensions)
            count = old.chunk_count - len(gone) + len(chunks)
            manifest = replace(
                old, chunk_count=count, next_chunk_id=old.next_chunk_id + len(chunks), source_files=len(found.files),
                sources=[os.path.abspath(s) for s in sources], updated_at=_now(), files=_checksums(staging),
            )
            _install(staging, manifest, kb_dir)
    return UpdateReport(kb_dir, sorted(added), sorted(changed), sorted(removed), unchanged, found.skipped,
                        len(chunks), len(gone), count, seconds)


def embedding_text(chunk: Chunk) -> str:
    """What the model embeds for a chunk: where it comes from, then its text. The path and
    the name carry meaning the text may not (the module a function is in, the heading
    a paragraph is under)."""
    title = f"{chunk.path} {chunk.qualified_name}" if chunk.qualified_name else chunk.path
    return f"{title}\n{chunk.text}"


def _chunk_files(files: Iterable[SourceFile], strip_docstrings: bool) -> list[Chunk]:
    return [chunk for f in files for chunk in chunk_source(f.path, f.text, strip_docstrings=strip_docstrings)]


def _add(index: Index, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Insert vectors into the HNSW graph on one thread. usearch's threaded insertion makes
    a different graph each time, and some are worse: on json/ + logging/ (350 chunks, 181
    queries), 9 of 30 threaded builds missed 6 to 61 of the exact top-20 neighbours, while
    30 single-threaded builds made the same graph and missed none (measured here)."""
    if len(ids):
        index.add(ids, vectors, threads=1)


def _embed(chunks: list[Chunk], embedder: Embedder, done: Counter) -> Embeddings:
    """Embeddings of the chunks, in order, EMBED_SLICE at a time so that progress shows."""
    texts = [embedding_text(chunk) for chunk in chunks]
    vectors = np.empty((len(texts), embedder.dimensions), dtype=np.float32)
    tokens: list[int] = []
    truncated: list[bool] = []
    for at in range(0, len(texts), EMBED_SLICE):
        embedded = embedder.embed(texts[at:at + EMBED_SLICE])
        vectors[at:at + len(embedded.tokens)] = embedded.vectors
        tokens += embedded.tokens
        truncated += embedded.truncated
        done.advance(len(embedded.tokens))
    return Embeddings(vectors, tokens, truncated)


def _create_database(path: Path) -> sqlite3.Connection:
    db = _open_database(path)
    db.executescript(SCHEMA)
    return db


def _open_database(path: Path) -> sqlite3.Connection:
    """A connection for writing a KB being staged: no journal, no syncs (a failed write
    throws the whole directory away; `_install` syncs what it keeps)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db


def _insert(db: sqlite3.Connection, ids: np.ndarray, chunks: list[Chunk], embedded: Embeddings,
            files: Iterable[SourceFile]) -> None:
    db.executemany(
        "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((int(chunk_id), c.path, c.kind, c.qualified_name, c.scope, c.start_line, c.end_line, c.text,
          tokens, int(cut), vector.astype("<f4").tobytes())
         for chunk_id, c, tokens, cut, vector in zip(ids, chunks, embedded.tokens, embedded.truncated,
                                                     embedded.vectors, strict=True)))
    per_file = Tally(c.path for c in chunks)
    db.executemany("INSERT INTO files VALUES (?, ?, ?, ?)",
                   ((f.path, f.sha256, f.size, per_file[f.path]) for f in files))


def _finish(db: sqlite3.Connection, index: Index, staging: Path, dimensions: int) -> None:
    """Commit the database and write what is derived from it: the vectors in id order
    (from the BLOBs, the source of truth) and the index."""
    db.commit()
    rows = db.execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
    db.close()
    ids = np.array([chunk_id for chunk_id, _ in rows], dtype=np.int64)
    vectors = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4").reshape(len(rows), dimensions)
    np.save(staging / IDS, ids)
    np.save(staging / VECTORS, vectors.astype(np.float32))
    index.save(str(staging / INDEX))


def _load_index(path: Path) -> Index:
    try:
        index = Index.restore(path)
    except (ValueError, RuntimeError, OSError) as e:
        raise KnowledgeBaseError(f"{path} is not a usearch index ({e})") from None
    if index is None:
        raise KnowledgeBaseError(f"{path} is missing")
    return index


def _checksums(directory: Path) -> dict[str, FileEntry]:
    return {name: FileEntry((directory / name).stat().st_size, file_sha256(directory / name)) for name in DATA_FILES}


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A new directory beside target (same file system, so it can be renamed into place).
    It is removed at the end: after a failure it holds the unfinished KB, after an
    exchange the KB that was replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would keep a PoP's other server processes out
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install(staging: Path, manifest: Manifest, target: Path) -> None:
    """Write the manifest last, sync everything, then put staging at target: a rename when
    nothing is there, else an exchange with the old KB, which is then deleted."""
    (staging / MANIFEST).write_text(manifest.to_json())
    for name in (*DATA_FILES, MANIFEST):
        fsync(staging / name)
    fsync(staging)
    if target.exists():
        _exchange(staging, target)  # the old KB is now at `staging`, which _staging removes
    else:
        os.rename(staging, target)
    fsync(target.parent)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories. On Linux in one step (renameat2 with RENAME_EXCHANGE), so
    there is no moment without a KB at either path; elsewhere with three renames."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")
    aside = a.with_name(a.name + ".old")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
