"""The default config's demo knowledge base: built on first use, kept while the host's
model made it, built again when another model did (an upgrade), never loaded stale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgepop.kb.embedder import MODEL_NAME
from edgepop.kb.store import MANIFEST, KnowledgeBase
from edgepop.pop import demo_kb


def test_built_once_kept_then_rebuilt_for_another_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo_kb, "DEMO_KB_PACKAGES", ("json",))  # one package is enough, and quicker
    kb_dir = tmp_path / "demo"
    demo_kb.ensure_demo_kb(kb_dir)
    assert "building the demo knowledge base" in capsys.readouterr().out
    manifest = json.loads((kb_dir / MANIFEST).read_text())
    assert manifest["model"] == MODEL_NAME and manifest["chunk_count"] > 0
    assert all("/json/" in source or source.endswith("/json") for source in manifest["sources"])

    demo_kb.ensure_demo_kb(kb_dir)  # the host's model made it: kept as it is
    assert capsys.readouterr().out == ""
    assert json.loads((kb_dir / MANIFEST).read_text())["built_at"] == manifest["built_at"]

    (kb_dir / MANIFEST).write_text(json.dumps({**manifest, "model": "all-MiniLM-L6-v2-onnx-int8"}))
    demo_kb.ensure_demo_kb(kb_dir)
    assert f"built with all-MiniLM-L6-v2-onnx-int8, not {MODEL_NAME}" in capsys.readouterr().out
    with KnowledgeBase.open(kb_dir, model=MODEL_NAME, dimensions=384) as kb:
        assert kb.manifest.model == MODEL_NAME and kb.manifest.chunk_count == manifest["chunk_count"]
