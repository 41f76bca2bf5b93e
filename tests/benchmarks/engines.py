"""The tokenizers compared side by side, each wrapped as `encode(text) -> ids`.

- HF `tokenizers`, native, single thread: the reference.
- tiktoken, for models whose BPE is tiktoken's (ranks equal ids): built here from the
  model's tokenizer.json, since tiktoken's own files are downloads; checked against HF
  before it is timed.
- edgepop's Python pipeline, natively under CPython.
- edgepop's tokenizer component, through the host: text in, packed ids out, as a u32 array.
- the same two with offsets (`encode-with-offsets`): ids and each token's span of the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import tiktoken

from edgepop.conformance import load_reference
from edgepop.runtime import Runtime
from edgepop.tokenizer import TokenizerSession
from edgepop_tokenizer import Tokenizer as Pipeline
from edgepop_tokenizer import byte_level, packed_ids

Encode = Callable[[str], Sequence[int]]


def hf(tokenizer_json: Path) -> Encode:
    reference = load_reference(tokenizer_json)  # padding and truncation off: tokenization only
    return lambda text: reference.encode(text, add_special_tokens=False).ids


def python_native(tokenizer_json: Path) -> Encode:
    pipeline = Pipeline.from_str(tokenizer_json.read_text(encoding="utf-8"))
    pipeline.warm()
    return lambda text: pipeline.encode(text, add_special_tokens=False)


def component(runtime: Runtime, wasm: Path) -> Encode:
    session = TokenizerSession(runtime.load(wasm).instantiate())
    return lambda text: packed_ids.unpack_array(session.encode_packed(text, add_special_tokens=False))


def python_native_offsets(tokenizer_json: Path) -> Encode:
    """The pipeline's offsets path (ids and spans; HF's `encode` always makes both)."""
    pipeline = Pipeline.from_str(tokenizer_json.read_text(encoding="utf-8"))
    return lambda text: pipeline.encode_with_offsets(text, add_special_tokens=False)[0]


def component_offsets(runtime: Runtime, wasm: Path) -> Encode:
    """`encode-with-offsets` through the host, both packed strings unpacked."""
    session = TokenizerSession(runtime.load(wasm).instantiate())
    return lambda text: session.encode_with_offsets(text, add_special_tokens=False)[0]


def tiktoken_encoding(tokenizer_json: Path, check: Sequence[str]) -> Encode | None:
    """tiktoken with this model's ranks, or None when the model's BPE is not tiktoken's.

    tiktoken merges by the rank of the merged token, HF by the rank of the merge rule; for
    models converted from tiktoken (Llama 3, GPT-4o, GPT-3.5) the two agree, which is
    checked on `check` texts before the encoding is used.
    """
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    pre = spec.get("pre_tokenizer") or {}
    splits = [p for p in pre.get("pretokenizers", []) if p.get("type") == "Split" and "Regex" in p.get("pattern", {})]
    if spec["model"].get("type") != "BPE" or len(splits) != 1:
        return None
    ranks = {}
    for token, rank in spec["model"]["vocab"].items():
        if not byte_level.is_byte_level(token):
            return None
        ranks[byte_level.to_bytes([token])] = rank
    ids = set(ranks.values())
    encoding = tiktoken.Encoding(
        name=tokenizer_json.parent.name,
        pat_str=splits[0]["pattern"]["Regex"],
        mergeable_ranks=ranks,
        special_tokens={t["content"]: t["id"] for t in spec["added_tokens"] if t["id"] not in ids},
    )
    reference = hf(tokenizer_json)
    for text in check:
        if encoding.encode_ordinary(text) != reference(text):
            return None
    return encoding.encode_ordinary
