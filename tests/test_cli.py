"""The `edgepop` command line, with real components, and every bad input it must refuse clearly."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer as Reference

from edgepop.build import BuildError, build_tokenizer
from edgepop.cli import main
from edgepop.config import Limits, MiB, RuntimeConfig
from edgepop.runtime import Runtime
from edgepop.tokenizer import InputTooLarge, TokenizerComponent, UnknownTokenId

from support import ROOT, component_path, tokenizer_json

MODEL = "llama-3.2"


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def hf() -> Reference:
    return Reference.from_file(str(tokenizer_json(MODEL)))


def test_tokenize_text_adds_special_tokens_as_hf_does(capsys, hf: Reference) -> None:
    text = "Tokenized at the edge, next to the user."
    status, out, _ = run(capsys, "tokenize", "--component", str(component_path(MODEL)), text)
    assert status == 0
    assert json.loads(out) == {"ids": hf.encode(text).ids, "count": len(hf.encode(text).ids)}
    status, out, _ = run(capsys, "tokenize", "--component", str(component_path(MODEL)), "--no-special", text)
    assert json.loads(out)["ids"] == hf.encode(text, add_special_tokens=False).ids


def test_tokenize_file(capsys, tmp_path: Path, hf: Reference) -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    path = tmp_path / "prompt.txt"
    path.write_text(source, encoding="utf-8")
    status, out, _ = run(capsys, "tokenize", "--component", str(component_path(MODEL)), "--file", str(path))
    assert status == 0 and json.loads(out)["ids"] == hf.encode(source).ids


def test_jsonl_keeps_order_and_reports_bad_lines(capsys, monkeypatch, hf: Reference) -> None:
    lines = ['{"text": "first"}', "not json", '{"x": 1}', '{"text": ""}', '{"text": "fifth line"}', ""]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    status, out, _ = run(capsys, "tokenize", "--component", str(component_path(MODEL)), "--jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 1  # some lines failed, and the exit status says so
    assert len(records) == 5  # one output line per non-blank input line
    assert records[0]["ids"] == hf.encode("first").ids
    assert records[1] == {"error": records[1]["error"], "line": 2} and "not JSON" in records[1]["error"]
    assert 'no "text"' in records[2]["error"] and records[2]["line"] == 3
    assert "empty" in records[3]["error"] and records[3]["line"] == 4
    assert records[4] == {"ids": hf.encode("fifth line").ids, "count": len(hf.encode("fifth line").ids)}


def test_non_utf8_file_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café".encode("latin-1"))
    status, out, err = run(capsys, "tokenize", "--component", str(component_path(MODEL)), "--file", str(path))
    assert status == 2 and out == ""
    assert "not valid UTF-8" in err and "0xe9 at offset 3" in err


def test_empty_text_is_refused(capsys, tmp_path: Path) -> None:
    status, _, err = run(capsys, "tokenize", "--component", str(component_path(MODEL)), "")
    assert status == 2 and "empty" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    status, _, err = run(capsys, "tokenize", "--component", str(component_path(MODEL)), "--file", str(empty))
    assert status == 2 and "empty.txt is empty" in err


def test_50_mb_of_text_is_refused_before_it_reaches_the_guest(capsys, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * (10 * MiB))  # 50 MiB
    status, _, err = run(capsys, "tokenize", "--component", str(component_path(MODEL)), "--file", str(big))
    assert status == 2
    assert "52,428,800 bytes" in err and "limit of 16,777,216 bytes" in err


def test_the_component_enforces_its_own_input_limit() -> None:
    """A host with a looser limit still gets a clear, typed refusal from the component."""
    runtime = Runtime(RuntimeConfig(limits=Limits(max_input_bytes=64 * MiB)))
    try:
        session = TokenizerComponent(runtime.load(component_path(MODEL))).session()
        with pytest.raises(InputTooLarge, match="over the limit of 16,777,216 bytes") as caught:
            session.encode("x" * (17 * MiB))
        assert (caught.value.size, caught.value.limit) == (17 * MiB, 16 * MiB)
        with pytest.raises(InputTooLarge, match="text 1 of the batch"):
            session.encode_batch(["fine", "x" * (17 * MiB)])
        assert session.encode("still serving", False) == Reference.from_file(
            str(tokenizer_json(MODEL))).encode("still serving", add_special_tokens=False).ids
    finally:
        runtime.close()


def test_decode_and_unknown_ids(capsys, hf: Reference) -> None:
    ids = hf.encode("round trip").ids
    status, out, _ = run(capsys, "decode", "--component", str(component_path(MODEL)), *map(str, ids))
    assert status == 0 and out == "round trip\n"
    status, _, err = run(capsys, "decode", "--component", str(component_path(MODEL)), "9906", "999999")
    assert status == 2 and "id 999999 at position 1 is not in the vocabulary" in err
    status, _, err = run(capsys, "decode", "--component", str(component_path(MODEL)), "12", "abc")
    assert status == 2 and "must be integers" in err
    runtime = Runtime()
    try:
        with pytest.raises(UnknownTokenId) as caught:
            TokenizerComponent(runtime.load(component_path(MODEL))).decode([1, 2, hf.get_vocab_size() + 5])
        assert (caught.value.position, caught.value.token_id) == (2, hf.get_vocab_size() + 5)
    finally:
        runtime.close()


def test_info_describes_world_exports_and_tokenizer(capsys, hf: Reference) -> None:
    status, out, _ = run(capsys, "info", "--json", str(component_path(MODEL)))
    assert status == 0
    info = json.loads(out)
    assert info["world"] == "edge:ai/tokenizer-component@0.2.0"
    assert info["exports"]["edge:ai/tokenizer@0.2.0"] == ["describe", "encode", "encode-with-offsets", "encode-batch", "count", "decode"]
    assert info["unexpected_imports"] == [] and all(i.startswith("wasi:") for i in info["imports"])
    tokenizer = info["tokenizer"]
    assert tokenizer["model_name"] == MODEL and tokenizer["vocab_size"] == hf.get_vocab_size()
    assert tokenizer["max_context_length"] == 131072 and tokenizer["lossless"] is True
    status, out, _ = run(capsys, "info", str(component_path(MODEL)))
    assert "tokenizer  llama-3.2 (BPE), 128,257 ids" in out


def test_info_refuses_what_is_not_a_component(capsys, tmp_path: Path) -> None:
    path = tmp_path / "x.wasm"
    path.write_bytes(b"\0asm\x01\0\0\0")
    status, _, err = run(capsys, "info", str(path))
    assert status == 1 and "core WebAssembly module, not a component" in err


def unsupported_variant(tmp_path: Path, edit) -> Path:
    config = json.loads(tokenizer_json(MODEL).read_text(encoding="utf-8"))
    edit(config)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, named", [
    (lambda c: c.update(normalizer={"type": "Nmt"}), "'Nmt' is not implemented"),
    (lambda c: c["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=r"\p{Greek}+"), r"\p{Greek}"),
    (lambda c: c.update(pre_tokenizer={"type": "FixedLength", "length": 5}), "'FixedLength' is not implemented"),
    (lambda c: c["model"].update(dropout=0.5), "model.dropout"),
])
def test_build_refuses_unsupported_tokenizers_naming_the_piece(tmp_path: Path, edit, named: str) -> None:
    path = unsupported_variant(tmp_path, edit)
    with pytest.raises(BuildError, match=re.escape(named)):
        build_tokenizer(path, tmp_path / "out.wasm")
    assert not (tmp_path / "out.wasm").exists()


def test_build_refuses_a_file_that_is_not_json(capsys, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text("{not json")
    status, _, err = run(capsys, "build", "tokenizer", "--tokenizer-json", str(path), "-o", str(tmp_path / "o.wasm"))
    assert status == 2 and "not valid JSON" in err


# all-MiniLM-L6-v2's tokenizer.json pads and truncates to 128 ids: the oracle must not.
@pytest.mark.parametrize("model", ["gpt2", "all-minilm-l6-v2"])
def test_conformance_reports_ok(capsys, model: str) -> None:
    status, out, _ = run(capsys, "conformance", str(component_path(model)), "--tokenizer-json",
                         str(tokenizer_json(model)), "--corpus", "fuzz", "--fuzz", "200")
    assert status == 0 and out.count(": OK:") == 2


def test_conformance_reports_first_differences(capsys) -> None:
    """A component checked against another model's tokenizer must fail, and say where."""
    status, out, _ = run(capsys, "conformance", str(component_path("gpt2")), "--tokenizer-json",
                         str(tokenizer_json(MODEL)), "--corpus", "fuzz", "--fuzz", "20", "--show", "1")
    assert status == 1 and "FAILED" in out and "ids differ from position" in out


def test_the_installed_command_runs() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("edgepop")), "tokenize", "--component", str(component_path(MODEL)),
         "--no-special", "hello"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["count"] == 1
