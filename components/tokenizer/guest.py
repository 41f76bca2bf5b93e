"""The tokenizer component: `edge:ai/tokenizer` over the pure-Python pipeline, one model baked in.

Everything at module level runs once, at build time, inside componentize-py's
pre-initialization: the model's tokenizer.json is parsed, its tables are built and its
word cache is warmed, the exports run once to specialize their bytecode, and the
resulting heap is frozen (`immortal_heap`) and snapshotted into the component. An
instance starts with all of it in place and never reads a file.

Bad input comes back as a `tokenize-error`; only a broken component traps. A
MemoryError is left to trap on purpose: the host reports it as the instance's memory
limit, and the instance is not used again.
"""

import gc
import json
import os
import traceback

# componentize-py's runtime imports these two once this module is done (it reseeds
# `random` in each instance and keeps `weakref.finalize`). Imported here, they are
# frozen with the rest instead of sitting mortal on pages every request writes to.
import random  # noqa: F401
import weakref  # noqa: F401

import edgepop_baked  # staged by `edgepop build tokenizer`: tokenizer.json and meta.json
import immortal_heap
from componentize_py_types import Err
from edgepop_tokenizer import Tokenizer as Pipeline
from edgepop_tokenizer import UnknownTokenId, packed_ids, serde_floats
from wit_world import exports
from wit_world.exports.tokenizer import (
    Encoding,
    OversizedInput,
    SpecialToken,
    TokenizeError_InputTooLarge,
    TokenizeError_Internal,
    TokenizeError_MalformedIds,
    TokenizeError_UnknownTokenId,
    TokenizerInfo,
    UnknownId,
)

_BAKED = os.path.dirname(edgepop_baked.__file__)

with open(os.path.join(_BAKED, "meta.json"), encoding="utf-8") as _f:
    META = json.load(_f)


def _load_pipeline():
    """Parse tokenizer.json and build the tables, keeping the peak of the heap low.

    Wasm memory never shrinks, and componentize-py snapshots all of it, so the file's
    text and its parsed JSON must be gone before the word cache is built: the cache then
    reuses their memory instead of growing the heap (gpt-oss would not fit otherwise).
    """
    with open(os.path.join(_BAKED, "tokenizer.json"), "rb") as f:
        config = json.load(f, parse_float=serde_floats.parse_float)  # floats as HF reads them
    pipeline = Pipeline(config)
    del config
    gc.collect()
    pipeline.warm()
    return pipeline


PIPELINE = _load_pipeline()

MAX_INPUT_BYTES = META["max_input_bytes"]

INFO = TokenizerInfo(
    model_name=META["model_name"],
    model_type=PIPELINE.model_type,
    vocab_size=PIPELINE.vocab_size,
    special_tokens=[SpecialToken(id=i, content=c) for i, c in PIPELINE.special_tokens],
    max_context_length=META["max_context_length"],
    lossless=PIPELINE.lossless,
    max_input_bytes=MAX_INPUT_BYTES,
    source_sha256=META["source_sha256"],
)


def _check_size(text, index):
    # A str's UTF-8 size is at most 4 chars' worth; only measure when it could be over.
    if len(text) * 4 > MAX_INPUT_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_INPUT_BYTES:
            raise Err(TokenizeError_InputTooLarge(OversizedInput(index=index, bytes=size, limit=MAX_INPUT_BYTES)))


def _guarded(method):
    """Turn an unexpected exception into an `internal` error carrying its traceback."""

    def call(*args):
        try:
            return method(*args)
        except (Err, MemoryError):
            raise
        except Exception as e:
            raise Err(TokenizeError_Internal("".join(traceback.format_exception(e)).strip()))

    return call


class Tokenizer(exports.Tokenizer):
    def describe(self):
        return INFO

    @_guarded
    def encode(self, text, add_special_tokens):
        _check_size(text, 0)
        return PIPELINE.encode_packed(text, add_special_tokens)

    @_guarded
    def encode_with_offsets(self, text, add_special_tokens):
        _check_size(text, 0)
        ids, offsets = PIPELINE.encode_with_offsets(text, add_special_tokens)
        return Encoding(ids=packed_ids.pack(ids), offsets=packed_ids.pack([i for span in offsets for i in span]))

    @_guarded
    def encode_batch(self, texts, add_special_tokens):
        for index, text in enumerate(texts):
            _check_size(text, index)
        return [PIPELINE.encode_packed(text, add_special_tokens) for text in texts]

    @_guarded
    def count(self, text, add_special_tokens):
        _check_size(text, 0)
        return PIPELINE.count(text, add_special_tokens)

    @_guarded
    def decode(self, ids, skip_special_tokens):
        try:
            unpacked = packed_ids.unpack_array(ids)
        except ValueError as e:
            raise Err(TokenizeError_MalformedIds(str(e)))
        try:
            return PIPELINE.decode(unpacked, skip_special_tokens)
        except UnknownTokenId as e:
            raise Err(TokenizeError_UnknownTokenId(UnknownId(position=e.position, id=e.id)))


# Text for _specialize: code, prose, digits, accents, CJK, Arabic, an emoji, whitespace runs.
_SPECIALIZE_TEXT = (
    "def greet(self, n: int = 3) -> list[str]:\n    return [f'{i:>4} héllo, 你好, مرحبا' for i in range(n)]  # 2026!\n"
    "The fox doesn't jump; it's 42.5% slower than they'd said.\n\t  été 😀\n"
)
_SPECIALIZE_ROUNDS = 32


def _specialize():
    """Run the exports at build time, so that CPython's specializing interpreter has already
    rewritten their bytecode: a request would otherwise write to (and copy) the page of
    every code object it runs. The caches are held, so no word of this text is baked."""
    tokenizer = Tokenizer()
    with PIPELINE.caches_held():
        for _ in range(_SPECIALIZE_ROUNDS):
            packed = tokenizer.encode(_SPECIALIZE_TEXT, True)
            tokenizer.encode(_SPECIALIZE_TEXT, False)
            tokenizer.encode_batch([_SPECIALIZE_TEXT], True)
            tokenizer.encode_with_offsets(_SPECIALIZE_TEXT, True)
            tokenizer.count(_SPECIALIZE_TEXT, True)
            tokenizer.decode(packed, True)


_specialize()
immortal_heap.freeze()  # last: everything above is baked
