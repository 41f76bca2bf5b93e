"""The knowledge base on disk, opened memory-mapped and shared by every reader.

A knowledge base (KB) is a directory:

    manifest.json   what it holds (model, dimensions, metric, quantization, chunk count,
                    sources) and the size and sha256 of each file below
    index.usearch   usearch HNSW index: cosine, keys are chunk ids, vectors f16/f32/i8
    chunks.sqlite   the chunks (text, provenance and the float32 vector, the source of
                    truth) and the source files' checksums, which `update` compares
    vectors.npy     the float32 vectors in chunk id order, and their ids in ids.npy, so
    ids.npy         exact search needs no SQLite

No file is changed in place: a build or an update writes a new directory and swaps it
in, so a KB that is open stays whole while it is replaced. Opening maps the index and
the vectors (the page cache holds one copy for every process that opens the KB), opens
SQLite read-only, and checks what is cheap: the manifest, the files' sizes, the counts.
`verify` reads every byte against the checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from usearch.index import Index, MetricKind, ScalarKind

from ..errors import EdgepopError
from .chunking import Chunk

FORMAT = "edgepop-kb"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX = "index.usearch"
CHUNKS = "chunks.sqlite"
VECTORS = "vectors.npy"
IDS = "ids.npy"
DATA_FILES = (INDEX, CHUNKS, VECTORS, IDS)
METRIC = "cos"
QUANTIZATIONS = {"f16": ScalarKind.F16, "f32": ScalarKind.F32, "i8": ScalarKind.I8}
# HNSW candidates per hit wanted: they are re-scored with the float32 vectors, so scores
# are exact cosines whatever the index's quantization, and the order is the exact order
# among the candidates.
OVERFETCH = 2
_SQLITE_MMAP_BYTES = 1 << 30
_IDS_PER_QUERY = 500  # SQLite's bound-parameter limit is 32,766; stay far below it
_CHUNK_COLUMNS = "id, path, kind, qualified_name, scope, start_line, end_line, text"


# chunks.sqlite. `files` holds the sources' checksums; a chunk's `tokens` and `truncated`
# say what of it the model saw.
SCHEMA = """
CREATE TABLE files (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, chunks INTEGER NOT NULL);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, qualified_name TEXT, scope TEXT,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, text TEXT NOT NULL,
    tokens INTEGER NOT NULL, truncated INTEGER NOT NULL, vector BLOB NOT NULL  -- little-endian float32
);
CREATE INDEX chunks_by_path ON chunks (path, id);
"""


class KnowledgeBaseError(EdgepopError):
    """A knowledge base cannot be built, opened or used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float  # cosine similarity


@dataclass(frozen=True)
class StoredChunk(Chunk):
    id: int


@dataclass(frozen=True)
class FileEntry:
    bytes: int
    sha256: str


@dataclass(frozen=True)
class HnswSettings:
    """How a KB's HNSW graph was built, and how many candidates a search of it keeps."""

    connectivity: int  # neighbours per node (usearch's M)
    expansion_add: int  # candidates kept while inserting
    expansion_search: int  # candidates kept while searching


# What `edgepop index build` uses now: an i8 index searched with 160 candidates. The
# candidates are re-scored with the float32 vectors, so the index only has to find them,
# and i8 vectors find them as well as f16 in half the memory. On the standard library's
# 23k chunks (w8a8 vectors, tools/retrieval_report.py) 160 candidates keep 0.9945 of exact
# recall@10 in a 0.42 ms search, 128 kept 0.9910 in 0.37 ms. The graph of the earlier
# settings below needed 512 candidates and 2.0 ms to keep 0.995.
QUANTIZATION = "i8"
HNSW = HnswSettings(connectivity=32, expansion_add=256, expansion_search=160)
# KBs whose manifest records no settings were built with these.
HNSW_UNRECORDED = HnswSettings(connectivity=16, expansion_add=128, expansion_search=512)


@dataclass(frozen=True)
class Manifest:
    """manifest.json: what a KB holds, and the checksums of its files."""

    model: str
    model_sha256: str
    dimensions: int
    max_tokens: int
    metric: str
    quantization: str
    chunk_count: int
    next_chunk_id: int  # ids are never reused: an update numbers new chunks from here
    source_files: int
    root: str  # the directory chunk paths are relative to
    sources: list[str]
    exclude: list[str]
    strip_docstrings: bool
    built_at: str
    updated_at: str | None
    files: dict[str, FileEntry]
    hnsw: HnswSettings = HNSW_UNRECORDED
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        header = {"format": data.pop("format"), "format_version": data.pop("format_version")}
        return json.dumps({**header, **data}, indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise KnowledgeBaseError(f"{path} is missing: {path.parent} is not a knowledge base") from None
        except OSError as e:
            raise KnowledgeBaseError(f"cannot read {path}: {e.strerror}") from None
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            raise KnowledgeBaseError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KnowledgeBaseError(f"{path} is not an edgepop knowledge base manifest (no \"format\": \"{FORMAT}\")")
        if data.get("format_version") != FORMAT_VERSION:
            raise KnowledgeBaseError(f"{path} is format version {data.get('format_version')!r}; "
                                     f"this edgepop reads version {FORMAT_VERSION}: rebuild the knowledge base")
        for name, kind in _MANIFEST_TYPES.items():
            if not isinstance(data.get(name), kind) or (kind is int and isinstance(data[name], bool)):
                raise KnowledgeBaseError(f"{path}: \"{name}\" is missing or not {_TYPE_NAMES[kind]}")
        files = {}
        for name in DATA_FILES:
            entry = data["files"].get(name)
            if not (isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
                    and isinstance(entry.get("sha256"), str)):
                raise KnowledgeBaseError(f"{path}: \"files\" has no size and sha256 for {name}")
            files[name] = FileEntry(entry["bytes"], entry["sha256"])
        if data["quantization"] not in QUANTIZATIONS or data["metric"] != METRIC:
            raise KnowledgeBaseError(f"{path}: unknown quantization {data['quantization']!r} "
                                     f"or metric {data['metric']!r}")
        return cls(**{**{f.name: data[f.name] for f in fields(cls) if f.name in data}, "files": files,
                      "hnsw": _hnsw_settings(data.get("hnsw"), path)})


def _hnsw_settings(data: object, path: Path) -> HnswSettings:
    """The manifest's "hnsw" object (absent in KBs built before it was recorded)."""
    if data is None:
        return HNSW_UNRECORDED
    names = [f.name for f in fields(HnswSettings)]
    if not (isinstance(data, dict) and all(type(data.get(n)) is int and data[n] > 0 for n in names)):
        raise KnowledgeBaseError(f"{path}: \"hnsw\" must be an object with positive integers {', '.join(names)}")
    return HnswSettings(**{n: data[n] for n in names})


_MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str, "model_sha256": str, "dimensions": int, "max_tokens": int, "metric": str,
    "quantization": str, "chunk_count": int, "next_chunk_id": int, "source_files": int, "root": str,
    "sources": list, "exclude": list, "strip_docstrings": bool, "built_at": str,
    "updated_at": (str, type(None)), "files": dict,
}
_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", bool: "true or false", dict: "an object",
               (str, type(None)): "a string or null"}


class KnowledgeBase:
    """An open knowledge base. Safe to use from several threads at once."""

    def __init__(self, directory: Path, manifest: Manifest, index: Index, ids: np.ndarray, vectors: np.ndarray,
                 db: sqlite3.Connection) -> None:
        """Use `open`."""
        self.directory = directory
        self.manifest = manifest
        self._index: Index | None = index
        self._ids: np.ndarray | None = ids
        self._vectors: np.ndarray | None = vectors
        self._db = db
        self._db_lock = threading.Lock()  # one connection (it must see the files the index came from)
        self._closed = False

    @classmethod
    def open(cls, kb_dir: Path, *, model: str | None = None, dimensions: int | None = None) -> KnowledgeBase:
        """Open the KB at kb_dir, refusing one built with another model or dimensions than
        those given, and one whose files are missing, cut short, unreadable or inconsistent
        with each other (what is cheap to check: sizes, headers, counts; `verify` reads
        every byte).

        An update may swap the directory while it is being opened; then it is opened again.
        """
        kb_dir = Path(kb_dir)
        for _ in range(3):
            before = _identity(kb_dir)
            try:
                kb = cls._open(kb_dir, model, dimensions)
            except KnowledgeBaseError:
                if _identity(kb_dir) == before:
                    raise
                continue
            if _identity(kb_dir) == before:
                return kb
            kb.close()
        raise KnowledgeBaseError(f"{kb_dir} was replaced three times while being opened; try again")

    @classmethod
    def _open(cls, kb_dir: Path, model: str | None, dimensions: int | None) -> KnowledgeBase:
        if not kb_dir.is_dir():
            raise KnowledgeBaseError(f"{kb_dir}: no such knowledge base directory")
        manifest = Manifest.read(kb_dir / MANIFEST)
        if model is not None and manifest.model != model:
            raise KnowledgeBaseError(f"{kb_dir} was built with the embedding model {manifest.model}, "
                                     f"not {model}: its vectors cannot be compared with that model's")
        if dimensions is not None and manifest.dimensions != dimensions:
            raise KnowledgeBaseError(f"{kb_dir} holds {manifest.dimensions}-dimension vectors, not {dimensions}")
        for name, entry in manifest.files.items():
            path = kb_dir / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise KnowledgeBaseError(f"{path} is missing") from None
            if size != entry.bytes:
                raise KnowledgeBaseError(f"{path} is {size:,} bytes; the manifest says {entry.bytes:,} "
                                         "(truncated or replaced)")
        index = _view_index(kb_dir / INDEX, manifest)
        ids, vectors = _map_vectors(kb_dir / IDS, kb_dir / VECTORS, manifest)
        db = _connect(kb_dir / CHUNKS, manifest)
        return cls(kb_dir, manifest, index, ids, vectors, db)

    def search(self, vector: np.ndarray, k: int, *, path_prefix: str | None = None) -> list[Hit]:
        """The k chunks nearest to `vector` by the HNSW index, best first, scored with their
        exact cosine similarity. With path_prefix, only chunks whose path starts with it:
        those are searched exhaustively, so the answer is exact and never short."""
        index, ids, vectors = self._parts()
        query = self._query(vector, k)
        if path_prefix is not None:
            return _exact(query, k, ids, vectors, self._rows_under(path_prefix, ids))
        count = min(len(index), max(OVERFETCH * k, k + 10))
        if count == 0:
            return []
        candidates = np.asarray(index.search(query, count).keys, dtype=np.int64)
        return _exact(query, k, ids, vectors, np.searchsorted(ids, candidates))

    def exact_search(self, vector: np.ndarray, k: int, *, path_prefix: str | None = None) -> list[Hit]:
        """The k chunks nearest to `vector` by brute force over every stored vector, best
        first (equal scores: lower id first)."""
        _, ids, vectors = self._parts()
        query = self._query(vector, k)
        rows = None if path_prefix is None else self._rows_under(path_prefix, ids)
        return _exact(query, k, ids, vectors, rows)

    def chunks(self, ids: Sequence[int]) -> list[StoredChunk | None]:
        """The chunks with these ids, in the same order; None for an id the KB does not hold."""
        wanted = [int(i) for i in ids]
        known = [i for i in set(wanted) if 0 <= i < self.manifest.next_chunk_id]
        found: dict[int, StoredChunk] = {}
        with self._db_lock:
            self._check_open()
            for at in range(0, len(known), _IDS_PER_QUERY):
                part = known[at:at + _IDS_PER_QUERY]
                rows = self._db.execute(
                    f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
                for chunk_id, *columns in rows:
                    found[chunk_id] = StoredChunk(*columns, id=chunk_id)
        return [found.get(i) for i in wanted]

    def source_files(self) -> dict[str, FileEntry]:
        """The source files the KB holds chunks of (and empty ones), by path: size and sha256."""
        with self._db_lock:
            self._check_open()
            rows = self._db.execute("SELECT path, bytes, sha256 FROM files ORDER BY path").fetchall()
        return {path: FileEntry(size, sha256) for path, size, sha256 in rows}

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 [n] ascending, float32 unit vectors [n, dimensions]), memory-mapped, read-only."""
        _, ids, vectors = self._parts()
        return ids, vectors

    def verify(self) -> None:
        """Check every file's size and sha256 against the manifest (reads all of them)."""
        for name, entry in self.manifest.files.items():
            path = self.directory / name
            try:
                digest = file_sha256(path)
            except OSError as e:
                raise KnowledgeBaseError(f"cannot read {path}: {e.strerror}") from None
            if digest != entry.sha256:
                raise KnowledgeBaseError(f"{path} is damaged: its sha256 is {digest}, the manifest says {entry.sha256}")

    def close(self) -> None:
        """Release the files. Calls already running finish; later ones raise KnowledgeBaseError."""
        with self._db_lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
        # A search still running holds its own references; the maps go with the last one.
        self._index = self._ids = self._vectors = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _parts(self) -> tuple[Index, np.ndarray, np.ndarray]:
        index, ids, vectors = self._index, self._ids, self._vectors
        if index is None or ids is None or vectors is None:
            raise KnowledgeBaseError(f"the knowledge base at {self.directory} is closed")
        return index, ids, vectors

    def _check_open(self) -> None:
        if self._closed:
            raise KnowledgeBaseError(f"the knowledge base at {self.directory} is closed")

    def _query(self, vector: np.ndarray, k: int) -> np.ndarray:
        """The query as a float32 unit vector; ValueError for a query no search can answer."""
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        query = np.asarray(vector, dtype=np.float32)
        if query.shape != (self.manifest.dimensions,):
            raise ValueError(f"the query vector has shape {query.shape}; this knowledge base's vectors have "
                             f"{self.manifest.dimensions} dimensions")
        norm = float(np.linalg.norm(query))
        if not np.isfinite(norm) or norm == 0:
            raise ValueError("the query vector must be finite and not zero")
        return query / norm

    def _rows_under(self, prefix: str, ids: np.ndarray) -> np.ndarray:
        """Rows (positions in ids) of the chunks whose path starts with prefix. Paths that
        start with it are consecutive in SQLite's order (code points, as Python's), so
        the scan starts at the prefix and stops at the first path past it."""
        found = []
        with self._db_lock:
            self._check_open()
            for path, chunk_id in self._db.execute(
                    "SELECT path, id FROM chunks WHERE path >= ? ORDER BY path", (prefix,)):
                if not path.startswith(prefix):
                    break
                found.append(chunk_id)
        return np.searchsorted(ids, np.array(found, dtype=np.int64))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _exact(query: np.ndarray, k: int, ids: np.ndarray, vectors: np.ndarray, rows: np.ndarray | None) -> list[Hit]:
    """The k best of the given rows (all rows when None) by cosine, best first, ties to the lower id."""
    if rows is not None:
        ids, vectors = ids[rows], vectors[rows]
    if len(ids) == 0:
        return []
    scores = vectors @ query
    k = min(k, len(ids))
    top = np.argpartition(-scores, k - 1)[:k]
    best = top[np.lexsort((ids[top], -scores[top]))]
    return [Hit(int(ids[i]), float(scores[i])) for i in best]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _view_index(path: Path, manifest: Manifest) -> Index:
    try:
        index = Index.restore(path, view=True)
    except (ValueError, RuntimeError, OSError) as e:
        raise KnowledgeBaseError(f"{path} is not a usearch index ({e})") from None
    if index is None:
        raise KnowledgeBaseError(f"{path} is missing")
    if index.metric_kind != MetricKind.Cos or index.dtype != QUANTIZATIONS[manifest.quantization]:
        raise KnowledgeBaseError(f"{path} is a {index.metric_kind.name} index of {index.dtype.name} vectors; "
                                 f"the manifest says {METRIC} and {manifest.quantization}")
    if index.connectivity != manifest.hnsw.connectivity:
        raise KnowledgeBaseError(f"{path} is a graph of connectivity {index.connectivity}; "
                                 f"the manifest says {manifest.hnsw.connectivity}")
    if index.ndim != manifest.dimensions or len(index) != manifest.chunk_count:
        raise KnowledgeBaseError(f"{path} holds {len(index):,} vectors of {index.ndim} dimensions; the manifest "
                                 f"says {manifest.chunk_count:,} of {manifest.dimensions}")
    index.expansion_search = manifest.hnsw.expansion_search
    return index


def _map_vectors(ids_path: Path, vectors_path: Path, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for path in (ids_path, vectors_path):
        try:
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (ValueError, OSError, EOFError) as e:
            raise KnowledgeBaseError(f"{path} is not a .npy array ({e})") from None
    ids, vectors = arrays
    n, dimensions = manifest.chunk_count, manifest.dimensions
    if ids.dtype != np.int64 or ids.shape != (n,):
        raise KnowledgeBaseError(f"{ids_path} holds {ids.dtype} {ids.shape}; expected int64 ({n},)")
    if vectors.dtype != np.float32 or vectors.shape != (n, dimensions):
        raise KnowledgeBaseError(f"{vectors_path} holds {vectors.dtype} {vectors.shape}; "
                                 f"expected float32 ({n}, {dimensions})")
    return ids, vectors


def _connect(path: Path, manifest: Manifest) -> sqlite3.Connection:
    """A read-only connection. `immutable`: the file never changes (updates replace the
    directory), so SQLite takes no locks and keeps no journal."""
    uri = f"{Path(os.path.abspath(path)).as_uri()}?mode=ro&immutable=1"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        db.execute(f"PRAGMA mmap_size = {_SQLITE_MMAP_BYTES}")
        count = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    except sqlite3.Error as e:
        db.close()
        raise KnowledgeBaseError(f"{path} is not a knowledge base's SQLite database ({e})") from None
    if count != manifest.chunk_count:
        db.close()
        raise KnowledgeBaseError(f"{path} holds {count:,} chunks; the manifest says {manifest.chunk_count:,}")
    return db
