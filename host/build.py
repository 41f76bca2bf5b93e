"""Building components: Python guest code plus baked data, through componentize-py.

`componentize` is the general step (any guest module, any of edgepop's worlds).
`build_tokenizer` bakes one model's tokenizer.json into the tokenizer component: the
file is checked natively first, so an unsupported tokenizer is refused in a second with
a message naming the piece, then staged where the guest's module-level code reads it
during componentize-py's pre-initialization, and finally compiled ahead of time so the
first run does not pay for compilation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wasmtime import wat2wasm
from edgepop_tokenizer import Tokenizer as Pipeline
from edgepop_tokenizer import UnsupportedTokenizer
from edgepop_tokenizer.precompiled import _read as read_charsmap

from . import charsmap
from .config import MiB, RuntimeConfig
from .errors import EdgepopError
from .progress import Progress
from .runtime import Runtime
from .tokenizer import TokenizerComponent

ROOT = Path(__file__).resolve().parent.parent
WIT_DIR = ROOT / "wit"
TOKENIZER_GUEST_DIR = ROOT / "components" / "tokenizer"
TOKENIZER_WORLD = "tokenizer-component"
# The guest's `_immortal` extension module, and the file name componentize-py links in
# as one (a WebAssembly dynamic library for the CPython 3.14 it bundles).
IMMORTAL_WAT = TOKENIZER_GUEST_DIR / "immortal.wat"
IMMORTAL_EXTENSION = "_immortal.cpython-314-wasm32-wasi.so"
RAG_GUEST_DIR = ROOT / "components" / "rag"
# Where `make build` puts the components it builds.
COMPONENTS_DIR = ROOT / "build" / "components"
RAG_WORLD = "rag-component"

DEFAULT_MAX_INPUT_BYTES = 16 * MiB
# tokenizer_config.json files say "no limit" with huge sentinels such as 1e30.
_PLAUSIBLE_CONTEXT = 1 << 24
# HF's Precompiled normalizer looks up a grapheme cluster whole only when it is shorter
# than 6 bytes of UTF-8, else character by character: longer keys are never found.
_LONGEST_CHARSMAP_LOOKUP = 5


class BuildError(EdgepopError):
    """A component could not be built; the message says which input or step failed."""


@dataclass(frozen=True)
class TokenizerBuild:
    """What `build_tokenizer` produced."""

    path: Path
    model_name: str
    vocab_size: int
    special_tokens: int
    max_context_length: int | None
    source_sha256: str
    size_bytes: int


def componentize(module: str, python_path: list[Path], world: str, out: Path, wit_dir: Path = WIT_DIR) -> None:
    """Run componentize-py on `module`; raise BuildError with the guest's traceback on failure."""
    tool = Path(sys.executable).with_name("componentize-py")
    if not tool.exists():
        found = shutil.which("componentize-py")
        if not found:
            raise BuildError("componentize-py is not installed (pip install componentize-py)")
        tool = Path(found)
    command = [str(tool), "-d", str(wit_dir), "-w", world, "componentize", module]
    for path in python_path:
        command += ["-p", str(path)]
    out.parent.mkdir(parents=True, exist_ok=True)
    command += ["-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"componentize-py failed for {module}:\n{_guest_error(done.stderr or done.stdout)}")


def build_tokenizer(
    tokenizer_json: Path,
    out: Path,
    *,
    model_name: str | None = None,
    max_context_length: int | None = None,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    runtime_config: RuntimeConfig | None = None,
    progress: Progress | None = None,
) -> TokenizerBuild:
    """Bake `tokenizer_json` into a tokenizer component at `out`, compiled and checked."""
    progress = progress or Progress(4)
    with progress.stage(f"checking {tokenizer_json}"):
        source = _read_tokenizer_json(tokenizer_json)
        pipeline = _check_supported(tokenizer_json, source)
        meta = {
            "model_name": model_name or tokenizer_json.resolve().parent.name,
            "max_context_length": max_context_length or _context_from_config(tokenizer_json.parent),
            "max_input_bytes": max_input_bytes,
            "source_sha256": hashlib.sha256(source).hexdigest(),
        }
    with tempfile.TemporaryDirectory(prefix="edgepop-build-") as staging:
        baked = Path(staging) / "edgepop_baked"
        baked.mkdir()
        (baked / "__init__.py").write_text('"""Data baked into a tokenizer component at build time."""\n')
        (baked / "tokenizer.json").write_bytes(_compact(source))
        (baked / "meta.json").write_text(json.dumps(meta, indent=2))
        (Path(staging) / IMMORTAL_EXTENSION).write_bytes(wat2wasm(IMMORTAL_WAT.read_text()))
        with progress.stage("componentize-py: bundling Python, parsing the tokenizer and warming its cache in Wasm"):
            componentize("guest", [TOKENIZER_GUEST_DIR, Path(staging)], TOKENIZER_WORLD, out)
    runtime = Runtime(runtime_config)
    try:
        with progress.stage("compiling ahead of time"):
            loaded = runtime.load(out)
        with progress.stage("checking the component against the native pipeline"):
            component = TokenizerComponent(loaded)
            info = component.describe()
            sample = "Hello, world! Tokenized at the edge: 123 + 4567 = 4690 ✓ こんにちは"
            got = component.encode(sample)
            want = pipeline.encode(sample)
            if got != want:
                raise BuildError(f"the built component encodes a sample as {got}, the native pipeline as {want}")
    finally:
        runtime.close()
    return TokenizerBuild(
        path=out,
        model_name=info.model_name,
        vocab_size=info.vocab_size,
        special_tokens=len(info.special_tokens),
        max_context_length=info.max_context_length,
        source_sha256=info.source_sha256,
        size_bytes=out.stat().st_size,
    )


def build_rag(out: Path, progress: Progress | None = None) -> Path:
    """Build the RAG component. It bakes no data: the knowledge base stays in the host."""
    progress = progress or Progress(1)
    with progress.stage("componentize-py: bundling Python and the RAG logic"):
        componentize("guest", [RAG_GUEST_DIR], RAG_WORLD, out)
    return out


def _read_tokenizer_json(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BuildError(f"cannot read {path}: {e.strerror}") from None
    try:
        json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BuildError(f"{path} is not a tokenizer.json: not valid JSON ({e})") from None
    return data


def _compact(source: bytes) -> bytes:
    """tokenizer.json re-serialized to parse into fewer objects inside the guest.

    A Wasm heap never shrinks, and componentize-py snapshots all of it (and refuses
    snapshots past 128 MiB), so the peak of parsing counts, not just what stays. Merges
    as `["a", "b"]` pairs parse into a list and two strings each; HF's equivalent legacy
    form `"a b"` is one string, and is used when no merged token contains a space (which
    would make it ambiguous) or starts a line with "#version" (which HF skips). Precompiled
    charsmaps keep only the keys a lookup can reach (see reachable_charsmap). Whitespace
    goes too. The ids are unchanged: HF reads both
    forms the same way, and the component is checked against the original at the end.
    """
    config = json.loads(source)
    for step in _precompiled_steps(config.get("normalizer")):
        step["precompiled_charsmap"] = reachable_charsmap(step["precompiled_charsmap"])
    model = config.get("model") or {}
    merges = model.get("merges")
    if isinstance(merges, list) and all(
        isinstance(m, list) and len(m) == 2 and all(isinstance(t, str) and " " not in t and t for t in m)
        and not m[0].startswith("#version")
        for m in merges
    ):
        model["merges"] = [f"{a} {b}" for a, b in merges]
    return json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _precompiled_steps(normalizer: object) -> list[dict]:
    """The Precompiled normalizers in a tokenizer.json's normalizer, inside Sequences too."""
    if not isinstance(normalizer, dict):
        return []
    if normalizer.get("type") == "Sequence":
        return [step for inner in normalizer.get("normalizers") or [] for step in _precompiled_steps(inner)]
    return [normalizer] if normalizer.get("type") == "Precompiled" else []


def reachable_charsmap(encoded: str) -> str:
    """A charsmap (base64) rebuilt with only the keys shorter than 6 bytes.

    SentencePiece's charsmaps (XLM-R's, nmt_nfkc) hold 225k keys, 97% of them sequences
    of 6 bytes or more, which neither HF nor edgepop ever looks up (a cluster that long
    is looked up one character at a time). The guest reads every key into a dict: about
    33 MiB of heap, which put XLM-R's component past componentize-py's 128 MiB snapshot.
    """
    keys = read_charsmap(base64.b64decode(encoded))
    reachable = {key.decode("utf-8"): value.decode("utf-8") for key, value in keys.items()
                 if len(key) <= _LONGEST_CHARSMAP_LOOKUP}
    return base64.b64encode(charsmap.build(reachable)).decode("ascii")


def _check_supported(path: Path, source: bytes) -> Pipeline:
    try:
        return Pipeline.from_str(source.decode("utf-8"))
    except UnsupportedTokenizer as e:
        raise BuildError(f"{path}: {e}") from None


def _context_from_config(directory: Path) -> int | None:
    """model_max_length from a tokenizer_config.json beside the tokenizer, when it is a real limit."""
    config = directory / "tokenizer_config.json"
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("model_max_length")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, (int, float)) and 0 < value < _PLAUSIBLE_CONTEXT:
        return int(value)
    return None


def _guest_error(output: str) -> str:
    """The useful part of componentize-py's output: the guest traceback, without Rust backtraces."""
    lines = output.strip().splitlines()
    for marker in ("Caused by:", "Stack backtrace:"):
        if marker in lines:
            lines = lines[: lines.index(marker)]
    return "\n".join(lines[-30:])
