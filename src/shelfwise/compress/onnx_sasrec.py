"""SASRec served from an ONNX graph with onnxruntime: no torch at serving time.

The graph (written by `shelfwise.compress.onnx_export`) maps right-aligned item rows
(batch, max_len) int64, item_index + 1 with 0 as padding, to next-item scores
(batch, n_items) float32, the same function as `SASRecNet.score_last`. Its weights
may be dynamically quantized to int8 (onnxruntime's `quantize_dynamic`).

Folder layout (no pickle)::

    params.json   name "sasrec_onnx", max_len, n_items, quantized, base params
    model.onnx    the graph with its weights

This module belongs to the online role: numpy and onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Self

import numpy as np

from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, DataError, NotReadyError
from shelfwise.retrieval.base import Histories
from shelfwise.retrieval.shared import check_ordered, read_params, write_params

KIND: Final = "sasrec_onnx"
GRAPH_FILE: Final = "model.onnx"
INPUT_NAME: Final = "rows"
_SCORE_BATCH: Final = 256


def right_aligned_rows(sequences: Sequences, users: IntArray, max_len: int) -> IntArray:
    """(len(users), max_len) int64 rows of each user's newest items + 1, padding (0) left."""
    out = np.zeros((users.size, max_len), dtype=np.int64)
    for slot, user in enumerate(users):
        end = int(sequences.indptr[user + 1])
        start = max(int(sequences.indptr[user]), end - max_len)
        if end > start:
            out[slot, max_len - (end - start) :] = sequences.items[start:end] + 1
    return out


def _session(graph: bytes, threads: int) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "serving SASRec as ONNX needs onnxruntime: install shelfwise[serve]"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(threads, 0)
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        graph, sess_options=options, providers=["CPUExecutionProvider"]
    )


class SASRecOnnxRecommender:
    """SASRec's next-item scores from an ONNX graph (onnxruntime, no torch).

    Inputs:
        histories: `UserHistories` whose `sequences` (per-user item indices, oldest
            first) the graph reads; `score_sequences` takes the `Sequences` alone.

    Relations:
        Scores like `SASRecRecommender` (float graph: equal up to float rounding; int8
        graph: within the quantization error). Implements `SequentialRecommender`.
    """

    name: str = KIND

    def __init__(
        self,
        graph: bytes,
        *,
        max_len: int,
        n_items: int,
        quantized: bool,
        base_params: dict[str, Any],
    ) -> None:
        """Wrap a serialized ONNX graph.

        Raises:
            ConfigError: onnxruntime is not installed.
            ArtifactError: the graph cannot be read.
        """
        self.name = "sasrec"  # serves under the base model's name
        self.graph = graph
        self.max_len = int(max_len)
        self.n_items = int(n_items)
        self.quantized = bool(quantized)
        self.base_params = dict(base_params)
        try:
            self.session = _session(graph, int(base_params.get("num_threads", 0)))
        except ConfigError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ArtifactError(f"the SASRec ONNX graph cannot be loaded: {exc}") from None

    def fit(self, train: Histories) -> None:
        """Not supported: export a fitted SASRec instead.

        Raises:
            NotReadyError: always.
        """
        raise NotReadyError("an ONNX SASRec is not trained; fit sasrec and export it")

    def fit_sequences(self, sequences: Sequences, n_items: int) -> None:
        """Not supported: export a fitted SASRec instead.

        Raises:
            NotReadyError: always.
        """
        raise NotReadyError("an ONNX SASRec is not trained; fit sasrec and export it")

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 next-item scores of the batch's ordered items.

        Raises:
            DataError: no sequences, rows of another item count, or see
                `score_sequences`.
        """
        return self.score_sequences(check_ordered(histories, self.n_items, model=self.name))

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) float32 next-item scores; empty sequences score 0.

        Raises:
            DataError: item indices outside [0, n_items).
        """
        items = sequences.items
        if items.size and (int(items.min()) < 0 or int(items.max()) >= self.n_items):
            raise DataError(
                f"sasrec_onnx: sequences hold item indices outside [0, {self.n_items}); "
                "build sequences with the model's item map"
            )
        scores = np.zeros((sequences.n_users, self.n_items), dtype=np.float32)
        users = np.flatnonzero(sequences.lengths() > 0).astype(np.int64)
        for start in range(0, users.size, _SCORE_BATCH):
            chunk = users[start : start + _SCORE_BATCH]
            rows = right_aligned_rows(sequences, chunk, self.max_len)
            (out,) = self.session.run(None, {INPUT_NAME: rows})
            scores[chunk] = out
        return scores

    def save(self, folder: Path) -> None:
        """Write `model.onnx` and `params.json`."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / GRAPH_FILE).write_bytes(self.graph)
        write_params(
            folder,
            KIND,
            {
                "max_len": self.max_len,
                "n_items": self.n_items,
                "quantized": self.quantized,
                "base_params": self.base_params,
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a folder written by `save`.

        Raises:
            ArtifactError: missing files or a graph onnxruntime cannot read.
        """
        params = read_params(folder, KIND)
        try:
            graph = (folder / GRAPH_FILE).read_bytes()
        except FileNotFoundError:
            raise ArtifactError(
                f"{folder / GRAPH_FILE} is missing; re-run the compress stage"
            ) from None
        return cls(
            graph,
            max_len=int(params["max_len"]),
            n_items=int(params["n_items"]),
            quantized=bool(params["quantized"]),
            base_params=dict(params["base_params"]),
        )


__all__ = ["GRAPH_FILE", "KIND", "SASRecOnnxRecommender", "right_aligned_rows"]
