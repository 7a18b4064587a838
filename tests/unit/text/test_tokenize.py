"""Tokenization of mixed Chinese / Latin text."""

from __future__ import annotations

import pytest

from shelfwise.text.tokenize import tokenize


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
