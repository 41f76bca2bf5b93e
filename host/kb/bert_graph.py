"""all-MiniLM-L6-v2's ONNX export, rebuilt with onnxruntime's fused, quantized BERT operators.

The export (torch's dynamo exporter) spells each layer's attention out as some forty
small operators (reshapes, transposes, slices, a NaN guard after the softmax), which
onnxruntime's transformer optimizer does not recognise, and it multiplies in float32
after turning its int8 weights back into floats. The graph is rebuilt here from the
export's own weights: EmbedLayerNormalization, then per layer QAttention, and
DynamicQuantizeMatMul + SkipLayerNormalization, DynamicQuantizeMatMul + BiasGelu +
DynamicQuantizeMatMul + SkipLayerNormalization; 49 operators instead of the 279
onnxruntime runs after its own optimizations.

The matrix products run in int8 ("w8a8"): the export's int8 weights with their
per-column scales, unchanged, times activations quantized to uint8 at run time, one
scale per tensor. This CPU's AVX2 multiplies int8 about twice as fast as float32:
embedding a query took 2.49 ms p50 instead of 4.04, and 256 knowledge-base chunks embedded
at 67-69 chunks/s instead of 43 (side by side, measured here). The price is precision:
pooled vectors have cosine 0.985 or more with the float32 graph's (test_kb_embedder.py),
so the result is a model of its own name (embedder.MODEL_NAME). Since the activation
scale is one per tensor, a padded batch would let one text's vector depend on its
neighbours: texts are run one at a time (embedder.py).

The weights are found by the names the export gives its biases and layer norms
(`inner.encoder.layer.3.attention.self.query.bias`): each bias is added to one MatMul,
whose weight the export computes by Cast of int8 values and Mul by per-column scales.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# all-MiniLM-L6-v2's config.json: 12 attention heads of 32 dimensions, LayerNorm eps 1e-12.
HEADS = 12
LAYER_NORM_EPSILON = 1e-12
# The inputs of the rebuilt graph, int32 as the fused operators take them: [batch, sequence].
INPUTS = ("input_ids", "token_type_ids", "attention_mask")
OUTPUT = "last_hidden_state"


class UnexpectedGraph(ValueError):
    """The model is not the all-MiniLM export this module knows how to rebuild."""


def fused_bert(export: bytes, *, int8: bool = True) -> bytes:
    """The serialized fused model computing the export's `last_hidden_state` from INPUTS.
    `int8=False` multiplies in float32 instead, as the export does: the reference that
    shows the rebuilt graph is wired as the export is (test_kb_embedder.py)."""
    weights = _Weights(onnx.load_from_string(export), int8)
    hidden = weights.hidden_size()
    nodes = [helper.make_node(
        "EmbedLayerNormalization",
        ["input_ids", "token_type_ids",
         weights.table("inner.embeddings.word_embeddings"),
         weights.table("inner.embeddings.position_embeddings"),
         weights.table("inner.embeddings.token_type_embeddings"),
         weights.constant("inner.embeddings.LayerNorm.weight"),
         weights.constant("inner.embeddings.LayerNorm.bias")],
        ["embedded", "mask_index"], domain="com.microsoft", epsilon=LAYER_NORM_EPSILON,
    )]
    x = "embedded"
    layers = weights.layer_count()
    for i in range(layers):
        out = OUTPUT if i == layers - 1 else f"layer{i}"
        nodes += _layer(weights, f"inner.encoder.layer.{i}.", x, out, f"l{i}")
        x = out
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2, fused",
        [helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "sequence"]) for name in INPUTS],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", "sequence", hidden])],
        weights.initializers,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _layer(weights: "_Weights", prefix: str, x: str, out: str, tag: str) -> list[onnx.NodeProto]:
    """One encoder layer: self-attention and the feed-forward block, each closed by a residual layer norm."""
    q_k_v = [weights.dense(prefix + f"attention.self.{name}.bias") for name in ("query", "key", "value")]
    qkv, qkv_bias = weights.add_dense(f"{tag}.qkv", Dense(*(np.concatenate(side_by_side, axis=-1)
                                                            for side_by_side in zip(*q_k_v))))
    attention_out, attention_bias = weights.add_dense(f"{tag}.attention",
                                                      weights.dense(prefix + "attention.output.dense.bias"))
    up, up_bias = weights.add_dense(f"{tag}.up", weights.dense(prefix + "intermediate.dense.bias"))
    down, down_bias = weights.add_dense(f"{tag}.down", weights.dense(prefix + "output.dense.bias"))
    ms = "com.microsoft"
    return [
        *qkv.attention(x, qkv_bias, f"{tag}.attended"),
        attention_out.matmul(f"{tag}.attended", f"{tag}.projected"),
        helper.make_node("SkipLayerNormalization",
                         [f"{tag}.projected", x, weights.constant(prefix + "attention.output.LayerNorm.weight"),
                          weights.constant(prefix + "attention.output.LayerNorm.bias"), attention_bias],
                         [f"{tag}.normed"], domain=ms, epsilon=LAYER_NORM_EPSILON),
        up.matmul(f"{tag}.normed", f"{tag}.up"),
        helper.make_node("BiasGelu", [f"{tag}.up", up_bias], [f"{tag}.gelu"], domain=ms),
        down.matmul(f"{tag}.gelu", f"{tag}.down"),
        helper.make_node("SkipLayerNormalization",
                         [f"{tag}.down", f"{tag}.normed", weights.constant(prefix + "output.LayerNorm.weight"),
                          weights.constant(prefix + "output.LayerNorm.bias"), down_bias],
                         [out], domain=ms, epsilon=LAYER_NORM_EPSILON),
    ]


@dataclass(frozen=True)
class Weight:
    """A weight [in, out] of the rebuilt graph, by initializer names: int8 values with a
    float32 scale and a zero point per column, or (scales None) float32 values."""
    values: str
    scales: str | None = None
    zero_points: str | None = None  # zeros: the export's quantization is symmetric

    def matmul(self, x: str, out: str) -> onnx.NodeProto:
        """x @ weight; in int8, x is quantized to uint8 on the fly and the product scaled back to float32."""
        if self.scales is None:
            return helper.make_node("MatMul", [x, self.values], [out])
        return helper.make_node("DynamicQuantizeMatMul", [x, self.values, self.scales, self.zero_points], [out],
                                domain="com.microsoft")

    def attention(self, x: str, bias: str, out: str) -> list[onnx.NodeProto]:
        """Self-attention over x, with this weight as the query, key and value projections side by side."""
        if self.scales is None:
            return [helper.make_node("Attention", [x, self.values, bias, "attention_mask"], [out],
                                     domain="com.microsoft", num_heads=HEADS)]
        quantized = [f"{x}.uint8", f"{x}.scale", f"{x}.zero_point"]
        return [
            helper.make_node("DynamicQuantizeLinear", [x], quantized),
            helper.make_node("QAttention", [quantized[0], self.values, bias, quantized[1], self.scales,
                                            "attention_mask", quantized[2], self.zero_points], [out],
                             domain="com.microsoft", num_heads=HEADS),
        ]


class Dense(NamedTuple):
    """A linear layer of the export: int8 weight [in, out], its per-column scales, the float bias."""
    values: np.ndarray
    scales: np.ndarray
    bias: np.ndarray


class _Weights:
    """The export's constants (int8 weights as stored, the rest as its graph computes them), and the rebuilt
    graph's initializers."""

    def __init__(self, model: onnx.ModelProto, int8: bool) -> None:
        graph = model.graph
        self._int8 = int8
        self._stored = {tensor.name: tensor for tensor in graph.initializer}
        self._producer = {output: node for node in graph.node for output in node.output}
        self._adds: dict[str, list[onnx.NodeProto]] = {}
        self._gathered: dict[str, str] = {}  # stored table name -> the value a Gather reads it as
        for node in graph.node:
            if node.op_type == "Add":
                for name in node.input:
                    self._adds.setdefault(name, []).append(node)
            elif node.op_type == "Gather":
                for stored in self._stored_inputs(node.input[0]):
                    self._gathered[stored] = node.input[0]
        self.initializers: list[onnx.TensorProto] = []
        self._added: set[str] = set()

    def layer_count(self) -> int:
        layers = {int(name.split(".")[3]) for name in self._stored if name.startswith("inner.encoder.layer.")}
        if not layers or layers != set(range(len(layers))):
            raise UnexpectedGraph(f"encoder layers {sorted(layers)}: expected layers 0 to n")
        return len(layers)

    def hidden_size(self) -> int:
        return int(self.value("inner.embeddings.LayerNorm.weight").shape[0])

    def value(self, name: str) -> np.ndarray:
        """A constant of the export: stored, or computed from stored ones by Cast and Mul."""
        if name in self._stored:
            return numpy_helper.to_array(self._stored[name])
        node = self._producer.get(name)
        if node is not None and node.op_type == "Cast":
            return self.value(node.input[0]).astype(np.float32)
        if node is not None and node.op_type == "Mul":
            return self.value(node.input[0]) * self.value(node.input[1])
        raise UnexpectedGraph(f"{name} is not a constant made by Cast and Mul")

    def add(self, name: str, array: np.ndarray) -> str:
        """Make `array` an initializer of the rebuilt graph, as float32, named `name`."""
        return self._add(name, array.astype(np.float32))

    def add_dense(self, name: str, dense: Dense) -> tuple[Weight, str]:
        """Make `dense`'s weight (int8 with its scales, or their float32 product) and bias initializers."""
        if self._int8:
            weight = Weight(self._add(name + ".weight", dense.values),
                            self._add(name + ".scale", dense.scales.astype(np.float32)),
                            self._add(name + ".zero_point", np.zeros(dense.values.shape[1], dtype=np.int8)))
        else:
            weight = Weight(self.add(name + ".weight", dense.values * dense.scales))
        return weight, self.add(name + ".bias", dense.bias)

    def _add(self, name: str, array: np.ndarray) -> str:
        if name not in self._added:
            self._added.add(name)
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def constant(self, name: str) -> str:
        return self.add(name, self.value(name))

    def table(self, prefix: str) -> str:
        """An embedding table, as the export's Gather reads it (dequantized)."""
        for stored, gathered in self._gathered.items():
            if stored.startswith(prefix):
                return self.add(prefix, self.value(gathered))
        raise UnexpectedGraph(f"no Gather reads a table named {prefix}*")

    def dense(self, bias: str) -> Dense:
        """The layer whose MatMul `bias` is added to."""
        adds = self._adds.get(bias, [])
        if len(adds) != 1:
            raise UnexpectedGraph(f"{bias} is added {len(adds)} times, not once")
        other = next(name for name in adds[0].input if name != bias)
        matmul = self._producer.get(other)
        if matmul is None or matmul.op_type != "MatMul":
            raise UnexpectedGraph(f"{bias} is not added to a MatMul")
        return Dense(*self._int8_weight(matmul.input[1]), self.value(bias))

    def _int8_weight(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The int8 values [in, out] and per-column scales [out] of a weight the export computes as Cast times Mul."""
        mul = self._producer.get(name)
        casts = [self._producer.get(input) for input in mul.input] if mul is not None and mul.op_type == "Mul" else []
        cast = next((node for node in casts if node is not None and node.op_type == "Cast"), None)
        if cast is None:
            raise UnexpectedGraph(f"{name} is not int8 values cast to float and multiplied by scales")
        values = self.value(cast.input[0])
        scales = self.value(next(input for input in mul.input if input != cast.output[0])).reshape(-1)
        if values.dtype != np.int8 or values.ndim != 2 or scales.shape != (values.shape[1],):
            raise UnexpectedGraph(f"{name}: {values.dtype} values {values.shape} with {scales.shape} scales, "
                                  f"not int8 [in, out] with one scale per column")
        return values, scales

    def _stored_inputs(self, name: str) -> list[str]:
        """The stored constants `name` is computed from, if it is a constant (see `value`)."""
        if name in self._stored:
            return [name]
        node = self._producer.get(name)
        if node is None or node.op_type not in ("Cast", "Mul"):
            return []
        return [stored for input in node.input for stored in self._stored_inputs(input)]
