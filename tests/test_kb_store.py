"""The knowledge base on disk: searching a real one, and refusing every broken one.

The KB is built once, with the real model, from the standard library's json package and
textwrap module; the broken ones are copies of it with a file missing, cut short,
overwritten or edited.
"""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
import threading
from pathlib import Path

import numpy as np
import pytest

from edgepop.kb.builder import build, embedding_text
from edgepop.kb.embedder import Embedder
from edgepop.kb.store import (
    CHUNKS, HNSW, IDS, INDEX, MANIFEST, QUANTIZATIONS, VECTORS, Hit, KnowledgeBase, KnowledgeBaseError, StoredChunk,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
QUERIES = ["decode a JSON document", "wrap a paragraph of text to a given width",
           "remove common leading whitespace from lines", "serialize a Python object as a JSON formatted stream"]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    out = tmp_path_factory.mktemp("kb") / "json-textwrap"
    build([STDLIB / "json", STDLIB / "textwrap.py"], out, embedder=embedder)
    return out


@pytest.fixture(scope="module")
def kb(kb_dir: Path, embedder: Embedder) -> KnowledgeBase:
    kb = KnowledgeBase.open(kb_dir, model=embedder.name, dimensions=embedder.dimensions)
    yield kb
    kb.close()


@pytest.fixture
def broken(kb_dir: Path, tmp_path: Path) -> Path:
    """A copy of the KB, to break."""
    return Path(shutil.copytree(kb_dir, tmp_path / "copy"))


def all_chunks(kb: KnowledgeBase) -> list[StoredChunk]:
    ids, _ = kb.vectors()
    return kb.chunks(ids.tolist())


def test_a_real_query_finds_the_function_that_does_it(kb: KnowledgeBase, embedder: Embedder) -> None:
    hits = kb.search(embedder.embed_query("decode a JSON document").vector, 3)
    found = [(c.path, c.qualified_name) for c in kb.chunks([h.chunk_id for h in hits])]
    assert {("json/decoder.py", "JSONDecoder.decode"), ("json/decoder.py", "JSONDecoder.raw_decode")} & set(found)
    hits = kb.search(embedder.embed_query("remove common leading whitespace from lines").vector, 3)
    assert ("textwrap.py", "dedent") in [(c.path, c.qualified_name) for c in kb.chunks([h.chunk_id for h in hits])]


@pytest.mark.parametrize("query", QUERIES)
def test_the_index_agrees_with_exact_search(kb: KnowledgeBase, embedder: Embedder, query: str) -> None:
    vector = embedder.embed_query(query).vector
    approximate, exact = kb.search(vector, 10), kb.exact_search(vector, 10)
    assert len(approximate) == len(exact) == 10
    assert len({h.chunk_id for h in approximate} & {h.chunk_id for h in exact}) >= 9
    assert [h.chunk_id for h in approximate[:3]] == [h.chunk_id for h in exact[:3]]
    assert [h.score for h in approximate[:3]] == pytest.approx([h.score for h in exact[:3]], abs=1e-6)  # exact cosines
    assert [h.score for h in exact] == sorted((h.score for h in exact), reverse=True)
    ids, vectors = kb.vectors()
    row = int(np.searchsorted(ids, exact[0].chunk_id))
    assert exact[0].score == pytest.approx(float(vectors[row] @ vector), abs=1e-6)


def test_a_path_prefix_keeps_only_those_paths_and_is_never_short(kb: KnowledgeBase, embedder: Embedder) -> None:
    vector = embedder.embed_query("wrap a paragraph of text to a given width").vector
    in_json = [c for c in all_chunks(kb) if c.path.startswith("json/")]
    hits = kb.search(vector, 1000, path_prefix="json/")
    assert sorted(h.chunk_id for h in hits) == sorted(c.id for c in in_json)  # every one of them, none else
    assert kb.search(vector, 5, path_prefix="json/") == kb.exact_search(vector, 5, path_prefix="json/") == hits[:5]
    assert [c.path for c in kb.chunks([h.chunk_id for h in kb.search(vector, 3, path_prefix="textwrap")])] == [
        "textwrap.py"] * 3
    assert kb.search(vector, 5, path_prefix="json/decoder") and all(
        c.path == "json/decoder.py" for c in kb.chunks([h.chunk_id for h in kb.search(vector, 5, path_prefix="json/d")]))
    assert kb.search(vector, 5, path_prefix="xml/") == [] == kb.exact_search(vector, 5, path_prefix="jsonx")


def test_chunks_come_back_in_the_order_asked_with_none_for_unknown_ids(kb: KnowledgeBase) -> None:
    chunks = all_chunks(kb)
    decode = next(c for c in chunks if c.qualified_name == "JSONDecoder.decode")
    assert isinstance(decode, StoredChunk) and decode.kind == "method" and decode.scope == "JSONDecoder"
    source = (STDLIB / "json/decoder.py").read_text().split("\n")
    assert decode.text == "\n".join(source[decode.start_line - 1:decode.end_line])
    got = kb.chunks([decode.id, 10**6, chunks[0].id, -1, decode.id, 2**64 - 1])
    assert got == [decode, None, chunks[0], None, decode, None]
    assert kb.chunks([]) == []


def test_stored_vectors_are_the_embeddings_of_the_chunks(kb: KnowledgeBase, embedder: Embedder) -> None:
    ids, vectors = kb.vectors()
    assert ids.dtype == np.int64 and vectors.dtype == np.float32 and vectors.shape == (len(ids), 384)
    assert (np.diff(ids) > 0).all() and len(ids) == kb.manifest.chunk_count
    sample = kb.chunks(ids[::15].tolist())
    again = embedder.embed([embedding_text(c) for c in sample]).vectors
    np.testing.assert_allclose(again, vectors[::15], atol=1e-5)


def test_the_manifest_says_what_the_kb_holds(kb: KnowledgeBase, embedder: Embedder) -> None:
    m = kb.manifest
    assert (m.model, m.model_sha256, m.dimensions, m.metric, m.quantization) == (
        embedder.name, embedder.model_sha256, 384, "cos", "i8")
    index, _, _ = kb._parts()
    assert index.dtype == QUANTIZATIONS["i8"] and index.expansion_search == HNSW.expansion_search
    assert m.root == str(STDLIB) and m.source_files == len(kb.source_files()) == 6
    assert set(kb.source_files()) == {"json/__init__.py", "json/decoder.py", "json/encoder.py", "json/scanner.py",
                                      "json/tool.py", "textwrap.py"}
    assert m.next_chunk_id == m.chunk_count and set(m.files) == {INDEX, CHUNKS, VECTORS, IDS}
    assert m.hnsw == HNSW


def test_many_threads_search_one_kb(kb: KnowledgeBase, embedder: Embedder) -> None:
    vectors = embedder.embed(QUERIES).vectors
    expected = [(kb.search(v, 5), kb.chunks([h.chunk_id for h in kb.search(v, 5)])) for v in vectors]
    failures: list[str] = []

    def run() -> None:
        for _ in range(25):
            for v, (hits, chunks) in zip(vectors, expected):
                got = kb.search(v, 5)
                if got != hits or kb.chunks([h.chunk_id for h in got]) != chunks:
                    failures.append("different results")
                if kb.search(v, 5, path_prefix="json/") != kb.exact_search(v, 5, path_prefix="json/"):
                    failures.append("prefix search differs")

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_bad_queries_are_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        kb.search(np.ones(384, dtype=np.float32), 0)
    with pytest.raises(ValueError, match="384 dimensions"):
        kb.exact_search(np.ones(512, dtype=np.float32), 3)
    with pytest.raises(ValueError, match="finite and not zero"):
        kb.search(np.zeros(384, dtype=np.float32), 3)


def test_a_closed_kb_says_so(kb_dir: Path) -> None:
    kb = KnowledgeBase.open(kb_dir)
    hits = kb.search(np.ones(384, dtype=np.float32), 2)
    assert len(hits) == 2 and all(isinstance(h, Hit) for h in hits)
    kb.close()
    kb.close()
    for call in (lambda: kb.search(np.ones(384), 2), lambda: kb.chunks([0]), kb.vectors):
        with pytest.raises(KnowledgeBaseError, match="is closed"):
            call()


def test_verify_passes_on_a_sound_kb_and_names_a_damaged_file(broken: Path) -> None:
    KnowledgeBase.open(broken).verify()
    vectors = broken / VECTORS
    with vectors.open("r+b") as f:  # one bit, past the header: same size, still a valid .npy
        f.seek(vectors.stat().st_size // 2)
        byte = f.read(1)[0]
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte ^ 1]))
    kb = KnowledgeBase.open(broken)  # opening checks sizes only
    with pytest.raises(KnowledgeBaseError, match=f"{vectors} is damaged: its sha256 is"):
        kb.verify()
    kb.close()


# Refusals ------------------------------------------------------------------------------


def refused(kb_dir: Path, match: str, **expected: object) -> None:
    with pytest.raises(KnowledgeBaseError, match=match):
        KnowledgeBase.open(kb_dir, **expected)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    refused(tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: no such knowledge base directory")
    refused(tmp_path, f"{tmp_path / MANIFEST} is missing: {tmp_path} is not a knowledge base")


@pytest.mark.parametrize("name", [INDEX, CHUNKS, VECTORS, IDS])
def test_a_missing_file_is_refused(broken: Path, name: str) -> None:
    (broken / name).unlink()
    refused(broken, f"{broken / name} is missing")


@pytest.mark.parametrize("name", [INDEX, CHUNKS, VECTORS, IDS])
def test_a_truncated_file_is_refused(broken: Path, name: str) -> None:
    path = broken / name
    size = path.stat().st_size
    os.truncate(path, size // 2)
    refused(broken, f"{path} is {size // 2:,} bytes; the manifest says {size:,}")


@pytest.mark.parametrize("name, match", [(INDEX, "is not a usearch index"),
                                         (CHUNKS, "is not a knowledge base's SQLite database"),
                                         (VECTORS, "is not a .npy array"), (IDS, "is not a .npy array")])
def test_garbage_of_the_right_size_is_refused(broken: Path, name: str, match: str) -> None:
    path = broken / name
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    refused(broken, f"{path} {match}")


def test_a_garbage_manifest_is_refused(broken: Path) -> None:
    (broken / MANIFEST).write_bytes(b"\x00\xff garbage {")
    refused(broken, f"{broken / MANIFEST} is not valid JSON")
    (broken / MANIFEST).write_text('{"format": "something else"}')
    refused(broken, "is not an edgepop knowledge base manifest")


def edit_manifest(kb_dir: Path, **changes: object) -> None:
    manifest = json.loads((kb_dir / MANIFEST).read_text())
    manifest.update(changes)
    (kb_dir / MANIFEST).write_text(json.dumps(manifest))


def test_a_manifest_missing_a_field_is_refused(broken: Path) -> None:
    edit_manifest(broken, dimensions="384")
    refused(broken, f'{broken / MANIFEST}: "dimensions" is missing or not an integer')


def test_a_manifest_from_another_format_version_is_refused(broken: Path) -> None:
    edit_manifest(broken, format_version=2)
    refused(broken, "is format version 2; this edgepop reads version 1: rebuild the knowledge base")


def test_a_kb_of_another_model_or_dimensions_is_refused(kb_dir: Path, broken: Path) -> None:
    refused(kb_dir, "was built with the embedding model all-MiniLM-L6-v2-onnx-int8-w8a8, not e5-small",
            model="e5-small")
    refused(kb_dir, "holds 384-dimension vectors, not 768", dimensions=768)
    edit_manifest(broken, dimensions=768)  # the manifest lies: the files say otherwise
    refused(broken, "holds .* vectors of 384 dimensions; the manifest says .* of 768")


def test_hnsw_settings_that_disagree_with_the_graph_are_refused(broken: Path) -> None:
    manifest = json.loads((broken / MANIFEST).read_text())
    del manifest["hnsw"]  # as KBs built before the settings were recorded: their graphs had 16
    (broken / MANIFEST).write_text(json.dumps(manifest))
    refused(broken, f"{broken / INDEX} is a graph of connectivity {HNSW.connectivity}; the manifest says 16")
    edit_manifest(broken, hnsw={"connectivity": 32, "expansion_add": 256})
    refused(broken, '"hnsw" must be an object with positive integers connectivity, expansion_add, expansion_search')


def test_counts_that_disagree_are_refused(broken: Path) -> None:
    manifest = json.loads((broken / MANIFEST).read_text())
    edit_manifest(broken, chunk_count=manifest["chunk_count"] + 1)
    refused(broken, f"{broken / INDEX} holds {manifest['chunk_count']:,} vectors")
