"""Export a fitted SASRec to ONNX, optionally with dynamic int8 weights (batch role).

torch is needed here only; the result loads with `SASRecOnnxRecommender`
(onnxruntime). Dynamic quantization stores MatMul / Gemm / Gather weights as int8
with per-tensor or per-channel scales; activations stay float and are quantized on
the fly, so no calibration data is needed.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from shelfwise.compress.onnx_sasrec import INPUT_NAME, SASRecOnnxRecommender
from shelfwise.errors import ConfigError
from shelfwise.retrieval.sasrec import SASRecRecommender
from shelfwise.retrieval.shared import PARAMS_FILE


def _torch() -> Any:
    try:
        import onnxruntime.quantization  # noqa: F401 - checked here, used below
        import torch
    except ImportError:
        raise ConfigError(
            "ONNX export needs torch, onnx and onnxruntime: install shelfwise[train]"
        ) from None
    return torch


def export_sasrec(
    model: SASRecRecommender, folder: Path, *, quantize: bool
) -> SASRecOnnxRecommender:
    """Export `model` (fitted, loaded from `folder`) to an ONNX recommender.

    Args:
        model: the fitted SASRec.
        folder: its saved folder (for the base parameters recorded with the graph).
        quantize: store weights as int8 (onnxruntime dynamic quantization).

    Raises:
        ConfigError: torch / onnx / onnxruntime missing.
        NotReadyError: the model is not fitted.
    """
    torch = _torch()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    net, n_items = model._fitted()  # noqa: SLF001 - the exporter needs the network itself
    net.eval()
    base_params = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
    example = torch.zeros((2, model.max_len), dtype=torch.int64)
    example[:, -1] = 1

    class _Scores(torch.nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, rows: Any) -> Any:
            return self.net.score_last(rows)

    wrapper = _Scores().eval()
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            # torch's exporter warns about its own internals (pytree, tracing)
            for category in (FutureWarning, DeprecationWarning, UserWarning):
                warnings.simplefilter("ignore", category)
            torch.onnx.export(
                wrapper,
                (example,),
                str(plain),
                input_names=[INPUT_NAME],
                output_names=["scores"],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1 << 20)},),
                dynamo=True,
                optimize=True,
                external_data=False,
                verbose=False,
            )
        target = plain
        if quantize:
            target = Path(tmp) / "model.int8.onnx"
            quantize_dynamic(str(plain), str(target), weight_type=QuantType.QInt8)
        graph = target.read_bytes()
    return SASRecOnnxRecommender(
        graph,
        max_len=model.max_len,
        n_items=n_items,
        quantized=quantize,
        base_params={k: v for k, v in base_params.items() if k not in ("name", "format_version")},
    )


__all__ = ["export_sasrec"]
