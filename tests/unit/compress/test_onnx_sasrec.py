"""SASRec as an ONNX graph: scores match torch, loads and scores without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shelfwise._internal.sequences import Sequences
from shelfwise.compress import load_recommender
from shelfwise.compress.quantize import top_k_overlap
from shelfwise.retrieval import SequentialRecommender

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

N_ITEMS = 80


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Sequences, Path]:
    """A tiny fitted SASRec, its float graph in `<root>/float`, int8 graph in `<root>/int8`."""
    from shelfwise.compress.onnx_export import export_sasrec
    from shelfwise.retrieval.sasrec import SASRecRecommender

    rng = np.random.default_rng(0)
    rows = [rng.integers(0, N_ITEMS, size=rng.integers(1, 14)) for _ in range(80)]
    sequences = Sequences.from_rows(rows)
    model = SASRecRecommender(max_len=12, hidden=32, blocks=1, heads=2, epochs=2, num_threads=1)
    model.fit_sequences(sequences, N_ITEMS)
    root = tmp_path_factory.mktemp("sasrec")
    model.save(root / "sasrec")
    for name, quantize in (("float", False), ("int8", True)):
        export_sasrec(model, root / "sasrec", quantize=quantize).save(root / name)
    return model, sequences, root


@pytest.mark.parametrize("variant", ["float", "int8"])
def test_onnx_scores_match_torch(exported: tuple[object, Sequences, Path], variant: str) -> None:
    model, sequences, root = exported
    loaded = load_recommender("sasrec", root / variant)  # the served name
    assert isinstance(loaded, SequentialRecommender)
    assert loaded.name == "sasrec"
    empty = Sequences.from_rows([[], [3, 4]])
    assert not loaded.score_sequences(empty)[0].any()  # empty history scores 0, as torch
    exact = model.score_sequences(sequences)  # type: ignore[attr-defined]
    approx = loaded.score_sequences(sequences)
    if variant == "int8":
        assert np.abs(exact - approx).max() < 0.1 * np.abs(exact).max()
        assert top_k_overlap(exact, approx, 10) >= 0.8
    else:
        np.testing.assert_allclose(approx, exact, atol=1e-4)
    assert {p.suffix for p in (root / variant).iterdir()} == {".onnx", ".json"}  # no pickle


def test_onnx_model_serves_without_torch(exported: tuple[object, Sequences, Path]) -> None:
    _, _, root = exported
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any torch import now fails
        "from pathlib import Path\n"
        "from shelfwise._internal.sequences import Sequences\n"
        "from shelfwise.compress import load_recommender\n"
        f"model = load_recommender('sasrec', Path({str(root / 'int8')!r}))\n"
        "print(model.score_sequences(Sequences.from_rows([[1, 2, 3]])).shape)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"(1, {N_ITEMS})" in done.stdout
