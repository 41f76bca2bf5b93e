"""Building and updating knowledge bases from real files, and the `edgepop index` commands.

Sources are copies of standard-library files (so updates can change them), with a
module in ISO-8859-1 and a GIF from the library's own tests for what must be skipped.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sysconfig
import threading
from pathlib import Path

import numpy as np
import pytest

from edgepop.cli import main
from edgepop.kb.builder import STAGES, BuildReport, build, update
from edgepop.kb.embedder import Embedder
from edgepop.kb.store import INDEX, MANIFEST, KnowledgeBase, KnowledgeBaseError
from edgepop.progress import Progress

STDLIB = Path(sysconfig.get_paths()["stdlib"])
README = """# edgepop

Tokenization and retrieval at the network edge, next to the user.

## Knowledge bases

A knowledge base holds chunks of source files, their embeddings and an HNSW index.
Build one with `edgepop index build`, then keep it current with `edgepop index update`.
"""


def quiet() -> Progress:
    return Progress(len(STAGES), quiet=True)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources") / "src"
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(STDLIB / "bisect.py", root)
    shutil.copy(STDLIB / "test/encoded_modules/module_iso_8859_1.py", root)  # not UTF-8
    shutil.copy(STDLIB / "test/imghdrdata/python.gif", root)  # binary
    (root / "README.md").write_text(README)
    for ignored in (".git", "__pycache__"):  # never sources
        (root / ignored).mkdir()
        shutil.copy(STDLIB / "textwrap.py", root / ignored)
    return root


@pytest.fixture(scope="module")
def built(sources: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildReport]:
    out = tmp_path_factory.mktemp("kb") / "kb"
    return out, build([sources], out, embedder=embedder, progress=quiet())


@pytest.fixture
def copies(sources: Path, built: tuple[Path, BuildReport], tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the sources and of the KB built from them, for an update to change."""
    src = Path(shutil.copytree(sources, tmp_path / "src"))
    kb_dir = Path(shutil.copytree(built[0], tmp_path / "kb"))
    manifest = json.loads((kb_dir / MANIFEST).read_text())
    manifest.update(root=str(src), sources=[str(src)])
    (kb_dir / MANIFEST).write_text(json.dumps(manifest))
    return src, kb_dir


def names(kb: KnowledgeBase) -> dict[int, tuple[str, str | None]]:
    ids, _ = kb.vectors()
    return {c.id: (c.path, c.qualified_name) for c in kb.chunks(ids.tolist())}


def top(kb: KnowledgeBase, embedder: Embedder, query: str, k: int = 3) -> list[tuple[str, str | None]]:
    hits = kb.search(embedder.embed_query(query).vector, k)
    return [(c.path, c.qualified_name) for c in kb.chunks([h.chunk_id for h in hits])]


def test_a_build_reports_what_it_read_skipped_and_took(built: tuple[Path, BuildReport]) -> None:
    out, report = built
    assert report.path == out and report.files == 7  # json's 5 modules, bisect.py, README.md
    assert report.skipped == {"module_iso_8859_1.py": "not UTF-8", "python.gif": "binary"}
    assert list(report.seconds) == list(STAGES) and all(s > 0 for s in report.seconds.values())
    assert report.chunks_per_second == pytest.approx(report.chunks / report.seconds["embed"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["kb"]  # no staging directory left
    assert out.stat().st_mode & 0o777 == 0o755  # readable by every process of a PoP
    with KnowledgeBase.open(out) as kb:
        assert kb.manifest.chunk_count == report.chunks and kb.manifest.source_files == 7
        assert set(kb.source_files()) == {"README.md", "bisect.py", "json/__init__.py", "json/decoder.py",
                                          "json/encoder.py", "json/scanner.py", "json/tool.py"}
        kb.verify()


def test_the_kb_answers_real_queries(built: tuple[Path, BuildReport], embedder: Embedder) -> None:
    with KnowledgeBase.open(built[0]) as kb:
        assert {("json/decoder.py", "JSONDecoder.decode"), ("json/decoder.py", "JSONDecoder.raw_decode")} & set(
            top(kb, embedder, "decode a JSON document"))
        assert {("bisect.py", "insort_right"), ("bisect.py", "insort_left")} & set(
            top(kb, embedder, "insert an item into a sorted list keeping it sorted"))
        assert ("README.md", "edgepop > Knowledge bases") in top(
            kb, embedder, "how do I keep a knowledge base current?")


def test_the_same_sources_build_the_same_kb(built: tuple[Path, BuildReport], sources: Path, embedder: Embedder,
                                           tmp_path: Path) -> None:
    """The HNSW graph is built on one thread, so it does not depend on how threads interleaved:
    a rebuild gives the same index file, byte for byte, and so the same answers."""
    build([sources], tmp_path / "kb", embedder=embedder, progress=quiet())
    assert (tmp_path / "kb" / INDEX).read_bytes() == (built[0] / INDEX).read_bytes()


def test_progress_counts_the_chunks_embedded(sources: Path, embedder: Embedder, tmp_path: Path) -> None:
    log = io.StringIO()
    report = build([sources / "bisect.py"], tmp_path / "kb", embedder=embedder, progress=Progress(4, out=log))
    lines = log.getvalue().splitlines()
    n = report.chunks
    assert len(lines) == 8 and lines[2] == f"[2/4] embedding {n} chunks ..."
    assert re.fullmatch(rf"\[2/4\] embedding {n} chunks done in [\d.]+ s \({n}/{n} chunks, [\d.]+ chunks/s\)", lines[3])


@pytest.mark.parametrize("quantization", ["f32", "i8"])
def test_other_quantizations(sources: Path, embedder: Embedder, tmp_path: Path, quantization: str) -> None:
    build([sources / "bisect.py"], tmp_path / "kb", embedder=embedder, quantization=quantization, progress=quiet())
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert kb.manifest.quantization == quantization
        vector = embedder.embed_query("insert an item into a sorted list keeping it sorted").vector
        approximate, exact = kb.search(vector, 3), kb.exact_search(vector, 3)
        assert [h.chunk_id for h in approximate] == [h.chunk_id for h in exact]
        # Candidates are re-scored with the float32 vectors: the scores are exact, not quantized.
        assert [h.score for h in approximate] == pytest.approx([h.score for h in exact], abs=1e-6)


def test_rebuilding_swaps_in_the_new_kb_while_an_open_one_keeps_working(sources: Path, embedder: Embedder,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "kb"
    build([sources / "bisect.py"], out, embedder=embedder, progress=quiet())
    old = KnowledgeBase.open(out)
    old_names = names(old)
    build([sources / "README.md"], out, embedder=embedder, progress=quiet())
    with KnowledgeBase.open(out) as new:
        assert {path for path, _ in names(new).values()} == {"README.md"}
    assert names(old) == old_names and {path for path, _ in old_names.values()} == {"bisect.py"}
    assert len(old.search(np.ones(384, dtype=np.float32), 2)) == 2
    old.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]


def test_readers_opening_while_builds_swap_kbs_in_always_get_a_whole_kb(sources: Path, embedder: Embedder,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "kb"
    files = [sources / "bisect.py", sources / "README.md"]
    build(files[:1], out, embedder=embedder, progress=quiet())
    done = threading.Event()
    errors: list[Exception] = []
    seen: set[str] = set()

    def read() -> None:
        while not done.is_set():
            try:
                with KnowledgeBase.open(out) as kb:
                    paths = {path for path, _ in names(kb).values()}
                    assert len(paths) == 1 and kb.manifest.source_files == 1, paths
                    seen.update(paths)
            except Exception as e:  # noqa: BLE001 — collected, reported below
                errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(6):
            build([files[i % 2]], out, embedder=embedder, progress=quiet())
    finally:
        done.set()
        reader.join()
    assert errors == [] and seen == {"bisect.py", "README.md"}


def test_a_build_refuses_to_replace_what_is_not_a_kb(sources: Path, embedder: Embedder, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(KnowledgeBaseError, match=f"{tmp_path} exists and is not a knowledge base"):
        build([sources / "bisect.py"], tmp_path, embedder=embedder, progress=quiet())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_build_refuses_bad_arguments(sources: Path, embedder: Embedder, tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match=f"{sources / 'missing.py'}: no such file or directory"):
        build([sources / "missing.py"], tmp_path / "kb", embedder=embedder, progress=quiet())
    with pytest.raises(KnowledgeBaseError, match="unknown quantization 'f8': choose one of f16, f32, i8"):
        build([sources], tmp_path / "kb", embedder=embedder, quantization="f8", progress=quiet())
    assert list(tmp_path.iterdir()) == []


def test_exclusions_follow_gitignore(sources: Path, embedder: Embedder, tmp_path: Path) -> None:
    report = build([sources], tmp_path / "kb", embedder=embedder, exclude=["json", "*.gif", "/module_*"],
                   progress=quiet())
    assert report.files == 2 and report.skipped == {}
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert set(kb.source_files()) == {"README.md", "bisect.py"} and kb.manifest.exclude == ["json", "*.gif",
                                                                                                "/module_*"]


# Updates -------------------------------------------------------------------------------

NEW_FUNCTION = '''

def skip_whitespace_and_comments(text, position):
    """Advance past blanks and '#' comments, returning the index of the next token."""
    while position < len(text):
        if text[position] == "#":
            position = text.find("\\n", position) + 1 or len(text)
        elif text[position].isspace():
            position += 1
        else:
            break
    return position
'''


def test_an_update_embeds_only_what_changed(copies: tuple[Path, Path], embedder: Embedder) -> None:
    src, kb_dir = copies
    before = KnowledgeBase.open(kb_dir)
    old_names, (old_ids, old_vectors) = names(before), before.vectors()
    old_ids, old_vectors = old_ids.copy(), old_vectors.copy()
    old_next = before.manifest.next_chunk_id
    with (src / "json/scanner.py").open("a") as f:
        f.write(NEW_FUNCTION)
    (src / "json/tool.py").unlink()
    shutil.copy(STDLIB / "colorsys.py", src)

    report = update(kb_dir, [src], embedder=embedder, progress=quiet())
    assert (report.added, report.changed, report.removed, report.unchanged) == (
        ["colorsys.py"], ["json/scanner.py"], ["json/tool.py"], 5)
    stale = {i for i, (path, _) in old_names.items() if path in ("json/scanner.py", "json/tool.py")}
    assert report.chunks_removed == len(stale) and report.chunks == len(old_names) - len(stale) + report.chunks_added

    with KnowledgeBase.open(kb_dir) as after:
        after.verify()
        now = names(after)
        assert after.manifest.chunk_count == len(now) == report.chunks and after.manifest.updated_at
        assert after.manifest.next_chunk_id == old_next + report.chunks_added
        assert after.chunks(sorted(stale)) == [None] * len(stale)
        kept = {i: n for i, n in old_names.items() if i not in stale}
        assert {i: now[i] for i in kept} == kept  # same ids, same chunks
        new = {i: n for i, n in now.items() if i not in kept}
        assert min(new) >= old_next and {n[0] for n in new.values()} == {"colorsys.py", "json/scanner.py"}
        ids, vectors = after.vectors()
        keep = np.isin(old_ids, list(kept))
        np.testing.assert_array_equal(vectors[np.isin(ids, list(kept))], old_vectors[keep])
        assert ("json/scanner.py", "skip_whitespace_and_comments") in top(
            after, embedder, "advance past blanks and comments to the next token")
        assert ("colorsys.py", "rgb_to_hsv") in top(after, embedder, "convert a color from RGB to HSV", 5)
        everything = after.exact_search(embedder.embed_query("json").vector, 1000)
        assert {h.chunk_id for h in everything} == set(now)
    # A reader that opened the KB before the update still sees the KB it opened.
    assert names(before) == old_names
    before.close()
    assert sorted(p.name for p in kb_dir.parent.iterdir()) == ["kb", "src"]


def test_an_update_with_nothing_changed_writes_nothing(copies: tuple[Path, Path], embedder: Embedder) -> None:
    src, kb_dir = copies
    manifest = (kb_dir / MANIFEST).read_bytes()
    report = update(kb_dir, [src], embedder=embedder, progress=quiet())
    assert (report.added, report.changed, report.removed, report.chunks_added) == ([], [], [], 0)
    assert report.unchanged == 7 and (kb_dir / MANIFEST).read_bytes() == manifest


def test_ids_are_never_reused(copies: tuple[Path, Path], embedder: Embedder) -> None:
    src, kb_dir = copies
    with KnowledgeBase.open(kb_dir) as kb:
        old_bisect = {i for i, (path, _) in names(kb).items() if path == "bisect.py"}
        old_next = kb.manifest.next_chunk_id
    shutil.move(src / "bisect.py", kb_dir.parent / "bisect.py")
    first = update(kb_dir, [src], embedder=embedder, progress=quiet())
    shutil.move(kb_dir.parent / "bisect.py", src / "bisect.py")
    second = update(kb_dir, [src], embedder=embedder, progress=quiet())
    assert first.removed == ["bisect.py"] and second.added == ["bisect.py"]
    with KnowledgeBase.open(kb_dir) as kb:
        new_bisect = {i for i, (path, _) in names(kb).items() if path == "bisect.py"}
        assert len(new_bisect) == len(old_bisect) == first.chunks_removed == second.chunks_added
        assert min(new_bisect) >= old_next > max(old_bisect)
        assert kb.manifest.next_chunk_id == old_next + len(new_bisect)


def test_an_update_refuses_sources_outside_the_root_and_a_damaged_kb(copies: tuple[Path, Path],
                                                                     embedder: Embedder) -> None:
    src, kb_dir = copies
    with pytest.raises(KnowledgeBaseError, match=f"{STDLIB / 'colorsys.py'} is outside {src}"):
        update(kb_dir, [src, STDLIB / "colorsys.py"], embedder=embedder, progress=quiet())
    index = kb_dir / INDEX
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 1
    index.write_bytes(bytes(data))
    with pytest.raises(KnowledgeBaseError, match=f"{index} is damaged"):
        update(kb_dir, [src], embedder=embedder, progress=quiet())


# The command line ----------------------------------------------------------------------


def test_the_index_commands(sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kb"
    assert main(["index", "build", str(sources / "bisect.py"), "--out", str(out), "--quantization", "i8"]) == 0
    printed = capsys.readouterr().out
    assert f"built {out}: " in printed and "chunks from 1 files" in printed and "embedding " in printed
    assert main(["index", "info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "all-MiniLM-L6-v2-onnx-int8-w8a8, 384 dimensions" in printed and "usearch HNSW, cos, i8" in printed
    assert main(["index", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source_files"] == 1
    assert main(["index", "verify", str(out)]) == 0
    assert "all 4 files match their sha256" in capsys.readouterr().out
    assert main(["index", "update", str(out), str(sources / "bisect.py")]) == 0
    assert f"{out} is up to date: 1 files unchanged" in capsys.readouterr().out
    assert main(["index", "verify", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == f"edgepop: error: {tmp_path / 'nowhere'}: no such knowledge base directory\n"
