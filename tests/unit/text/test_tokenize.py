"""Tokenization of mixed Chinese / Latin text."""

from __future__ import annotations

import pytest

from shelfwise.text.tokenize import (
    MAX_QUERY_CHARS,
    MAX_QUERY_TOKENS,
    MAX_TOKEN_CHARS,
    bound_query,
    tokenize,
)


def test_latin_words_are_lowercased_stemmed_and_filtered() -> None:
    assert tokenize("The Red Summer Dresses, for Running!") == ["red", "summer", "dress", "run"]


def test_full_width_text_is_normalised() -> None:
    assert tokenize("ＩＰＨＯＮＥ１５ Ｐｒｏ") == ["iphone15", "pro"]


def test_chinese_words_and_bigrams() -> None:
    tokens = tokenize("笔记本电脑")
    assert {"笔记本", "电脑", "笔记本电脑"} <= set(tokens)  # jieba search mode
    assert {"记本", "本电"} <= set(tokens)  # bigrams jieba did not emit
    assert len(tokens) == len(set(tokens))  # a bigram equal to a jieba word is not repeated


def test_partial_chinese_word_shares_tokens_with_the_full_word() -> None:
    assert set(tokenize("笔记本")) <= set(tokenize("联想 轻薄笔记本电脑 银色"))


def test_chinese_stop_words_are_dropped() -> None:
    tokens = tokenize("红色的裙子")
    assert "的" not in tokens
    assert not any("的" in token for token in tokens)
    assert {"红色", "裙子"} <= set(tokens)


def test_mixed_text_keeps_order_of_runs() -> None:
    tokens = tokenize("Zara红色连衣裙 size M")
    assert tokens[0] == "zara"
    assert tokens[-2:] == ["size", "m"]
    assert "连衣裙" in tokens


@pytest.mark.parametrize("text", ["", "   ", "!!!", "，。！？", "the and of", "___"])
def test_nothing_to_index(text: str) -> None:
    assert tokenize(text) == []


def test_deterministic() -> None:
    text = "联想 ThinkPad X1 Carbon 轻薄笔记本电脑 14英寸"
    assert tokenize(text) == tokenize(text)


# -- length limits (issue 14: a 1 MiB title stalled training, a 512-character query
# cost 330-690 ms) ------------------------------------------------------------------


def test_long_runs_are_cut_to_one_bounded_token() -> None:
    tokens = tokenize("x" * 4_000)
    assert tokens == ["x" * MAX_TOKEN_CHARS]
    # the same cut at index and at query time: a long run still finds itself
    assert tokenize("x" * 70) == tokens
    assert all(len(token) <= MAX_TOKEN_CHARS for token in tokenize("笔" + "记" * 5_000))


def test_a_one_mebibyte_title_gives_one_bounded_token_per_run() -> None:
    title = ("y" * 4_000 + " ") * 263  # 1 MiB: 263 runs of 4,000 letters
    assert len(title) >= 2**20
    tokens = tokenize(title)
    assert len(tokens) == 263
    assert {len(token) for token in tokens} == {MAX_TOKEN_CHARS}


def test_ordinary_tokens_are_unchanged_by_the_cut() -> None:
    assert tokenize("Supercalifragilisticexpialidocious waterproofing") == [
        "supercalifragilisticexpialidoci",
        "waterproof",
    ]


def test_max_tokens_keeps_the_first_tokens() -> None:
    text = "Lenovo ThinkPad 笔记本电脑 red dresses for running"
    everything = tokenize(text)
    for limit in (1, 2, 3, len(everything), len(everything) + 5):
        assert tokenize(text, max_tokens=limit) == everything[:limit]


@pytest.mark.parametrize(
    "query",
    [
        "red summer dress",
        "笔记本电脑",
        "Zara红色连衣裙 size M",
        "ＩＰＨＯＮＥ１５ Ｐｒｏ",
        "",
        "!!!",
    ],
)
def test_ordinary_queries_are_read_whole(query: str) -> None:
    assert bound_query(query) == query


def test_long_queries_are_bounded_in_tokens_and_characters() -> None:
    many_words = "ab " * 40  # 120 characters, 40 tokens
    assert bound_query(many_words) == " ".join(["ab"] * MAX_QUERY_TOKENS)
    for query in (
        "dress " * 100,  # 600 characters
        "q" * 512,  # one 512-letter token
        "笔记本电脑红色连衣裙手机" * 50,  # 600 Chinese characters, one run
        "laptop " + "x" * 5_000 + " 笔记本电脑" * 100,
    ):
        bounded = bound_query(query)
        tokens = tokenize(bounded)
        assert len(bounded) <= MAX_QUERY_CHARS
        assert 1 <= len(tokens) <= MAX_QUERY_TOKENS
        assert bound_query(bounded) == bounded  # what search reads is a fixed point
    assert bound_query("q" * 512) == "q" * MAX_TOKEN_CHARS
    assert tokenize(bound_query("dress " * 100)) == ["dress"] * MAX_QUERY_TOKENS
