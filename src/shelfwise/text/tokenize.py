"""Tokenization for search: one function, used at index time and at query time.

Mixed Chinese / Latin product text is split into runs of CJK characters and runs of
letters or digits. CJK runs are cut with jieba's search mode (which also emits the
shorter words inside long ones) and additionally into overlapping character bigrams,
so a partial word such as "笔记本" still matches "笔记本电脑" even when jieba cuts the
two differently. Latin and digit runs are lower-cased and stemmed with the Snowball
English stemmer (PyStemmer). Punctuation and a short stop-word list are dropped.

The output is deterministic for a given jieba dictionary and PyStemmer version;
both libraries are initialised lazily, once per process, behind a lock (jieba prints
its dictionary loading at INFO level, which is silenced).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from typing import Any

# CJK Unified Ideographs, extension A, compatibility ideographs and extensions B-F.
_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
# Letters and digits that are not CJK (and not "_", which \w includes).
_WORD_RUN = re.compile(f"[^\\W_{_CJK_RANGES}]+")
_TOKEN_RUN = re.compile(f"(?P<cjk>{_CJK_RUN.pattern})|(?P<word>{_WORD_RUN.pattern})")

ENGLISH_STOP_WORDS: frozenset[str] = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "this",
        "that",
        "to",
        "with",
    }
)
CHINESE_STOP_WORDS: frozenset[str] = frozenset(
    {"的", "了", "和", "与", "及", "或", "是", "在", "也", "都", "就", "着", "之", "于", "等"}
)

_lock = threading.Lock()
_stemmer: Any = None  # Stemmer.Stemmer; objects are not thread-safe, used under _lock
_jieba: Any = None  # the jieba module once its dictionary is loaded


def _load_jieba() -> Any:
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def _stem(words: list[str]) -> list[str]:
    global _stemmer
    with _lock:
        if _stemmer is None:
            import Stemmer

            _stemmer = Stemmer.Stemmer("english")
        return list(_stemmer.stemWords(words))


def _cjk_tokens(run: str) -> list[str]:
    """jieba search-mode words of a CJK run, then its bigrams not already emitted."""
    words = [
        word
        for word in _load_jieba().lcut_for_search(run)
        if word.strip() and word not in CHINESE_STOP_WORDS
    ]
    seen = set(words)
    for start in range(len(run) - 1):
        bigram = run[start : start + 2]
        if bigram in seen or any(char in CHINESE_STOP_WORDS for char in bigram):
            continue
        seen.add(bigram)
        words.append(bigram)
    return words


def tokenize(text: str) -> list[str]:
    """Split mixed Chinese / Latin text into search tokens.

    Steps: Unicode NFKC (full-width letters and digits become ASCII), lower-case,
    then for each run in order of appearance:

    * CJK run: jieba `lcut_for_search` words, then the run's character bigrams that
      jieba did not already emit (single-character runs give the character itself);
    * letter/digit run: the word, Snowball-English stemmed ("dresses" -> "dress").

    Punctuation, whitespace and the stop words in `ENGLISH_STOP_WORDS` and
    `CHINESE_STOP_WORDS` are dropped; bigrams containing a Chinese stop character
    are dropped too. Typos are not corrected.

    Args:
        text: any text; empty or punctuation-only text gives an empty list.

    Returns:
        The tokens in order of appearance (duplicates kept: they are term frequencies).

    Example:
        >>> tokenize("Red Summer Dresses 红色连衣裙")[:3]
        ['red', 'summer', 'dress']
    """
    normalised = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    pending_words: list[str] = []  # Latin words stemmed in one call, in order

    def flush_words() -> None:
        if pending_words:
            tokens.extend(_stem(pending_words))
            pending_words.clear()

    for match in _TOKEN_RUN.finditer(normalised):
        cjk = match.group("cjk")
        if cjk is not None:
            flush_words()
            tokens.extend(_cjk_tokens(cjk))
        else:
            word = match.group("word")
            if word not in ENGLISH_STOP_WORDS:
                pending_words.append(word)
    flush_words()
    return tokens


__all__ = ["CHINESE_STOP_WORDS", "ENGLISH_STOP_WORDS", "tokenize"]
