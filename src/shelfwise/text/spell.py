"""Typo tolerance for lexical search: correct unknown query tokens to catalog tokens.

The vocabulary is the set of tokens of the indexed catalog fields (the output of
`shelfwise.text.tokenize.tokenize`, so stemmed words), each with its catalog
frequency. A query token that is not in the vocabulary and is written in Latin letters
only (no digits, no CJK) is corrected to the vocabulary token at the smallest
Damerau-Levenshtein (optimal string alignment) distance, at most 1, or 2 for tokens of
`long_token_length` characters or more; among equally close tokens the most frequent
wins, then the alphabetically first. Chinese tokens are never corrected: jieba and the
character bigrams already make partial words match, and an edit on a 2-character word
changes its meaning.

Lookup is SymSpell's symmetric delete method: every vocabulary token is stored under
each string obtained by deleting up to 2 of its characters (1 for short tokens), and a
query token looks up its own deletes. Two strings within distance d share such a
delete, so the lookup is complete; candidates are then verified by the exact distance.

Bounded work (issue 14: a 1 MiB title stalled training here for over 20 minutes and
one 4,000-letter token took 18.8 GB, since a token of n letters has ~n²/2 2-deletes):
tokens longer than `max_token_length` (24 letters, 300 deletes at most) are never
corrected and never proposed, so no delete-neighbourhood is ever computed for them;
the index holds at most `max_index_entries` deletes (5 million, 80 MB), given to the
most frequent tokens first (the rest still count as known words); and a query token
looks up at most 301 strings.

Why not a library: `symspellpy` saves its dictionary with pickle (this project never
loads pickles) and brings its own word-frequency files, and `rapidfuzz` would compare
each query token with the whole vocabulary. The delete index is ~100 lines of plain
Python, rebuilt from the saved vocabulary (a JSON file) when an index loads.

References:
    Garbe. "SymSpell: 1 million times faster spelling correction through Symmetric
    Delete spelling correction algorithm." 2012, github.com/wolfgarbe/SymSpell.
    Damerau. "A technique for computer detection and correction of spelling errors."
    CACM 1964.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Self

import numpy as np

from shelfwise._internal.artifacts import atomic_write_json
from shelfwise.errors import ArtifactError, ConfigError

SPELL_FORMAT: Final = "shelfwise-spell-vocabulary"
SPELL_FORMAT_VERSION: Final = 1
# Lower-case Latin letters, accented ones included (Latin-1, Latin Extended-A/B and
# Additional); no digits: "128gb" must never become "256gb".
_LATIN_WORD: Final = re.compile(
    "^[a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u024f\u1e00-\u1eff]+$",
)
logger = logging.getLogger(__name__)
_MAX_DISTANCE: Final = 2
# The longest correctable token: long enough for real words ("waterproofing" has 13
# letters, German compounds reach ~20), short enough that its 1- and 2-deletes stay
# few (24 + 276). Longer tokens are part numbers, URLs or junk, never misspellings
# worth a neighbourhood of n²/2 strings.
MAX_CORRECTABLE_LENGTH: Final = 24
# Delete entries in one index: 16 bytes each (hash + owner), 5M = 80 MB. A catalog
# vocabulary of 150k tokens of ~7 letters needs about 4M.
MAX_INDEX_ENTRIES: Final = 5_000_000


def is_correctable(token: str) -> bool:
    """True when `token` is written in lower-case Latin letters only."""
    return _LATIN_WORD.match(token) is not None


def osa_distance(left: str, right: str, limit: int = _MAX_DISTANCE) -> int:
    """Optimal string alignment distance (Damerau-Levenshtein without re-edits).

    Insertions, deletions, substitutions and transpositions of two adjacent characters
    cost 1 each. Returns `limit + 1` as soon as the distance is known to exceed `limit`.
    """
    if abs(len(left) - len(right)) > limit:
        return limit + 1
    previous_previous: list[int] = []
    previous = list(range(len(right) + 1))
    for i in range(1, len(left) + 1):
        current = [i] + [0] * len(right)
        for j in range(1, len(right) + 1):
            cost = 0 if left[i - 1] == right[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and left[i - 1] == right[j - 2] and left[i - 2] == right[j - 1]:
                value = min(value, previous_previous[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous_previous, previous = previous, current
    return min(previous[-1], limit + 1)


def _deletes(token: str, distance: int) -> set[str]:
    """Every string obtained by deleting 1..`distance` characters of `token`."""
    found: set[str] = set()
    frontier = {token}
    for _ in range(distance):
        frontier = {
            word[:position] + word[position + 1 :]
            for word in frontier
            for position in range(len(word))
        }
        found |= frontier
    return found


class SpellCorrector:
    """Corrects query tokens to frequent vocabulary tokens within a small edit distance.

    Inputs:
        frequencies: vocabulary token -> catalog frequency (> 0); only tokens that
            `is_correctable` are ever proposed, the others only count as known.

    Relations:
        `BM25Search(typo_tolerance=True)` builds one from its indexed fields and adds
        the corrections of unknown query tokens to the query.

    Example:
        >>> speller = SpellCorrector({"dress": 5, "press": 1, "laptop": 2})
        >>> speller.correct("dresss"), speller.correct("laptpo"), speller.correct("dress")
        ('dress', 'laptop', None)
    """

    def __init__(
        self,
        frequencies: Mapping[str, int],
        *,
        min_token_length: int = 3,
        long_token_length: int = 8,
        max_token_length: int = MAX_CORRECTABLE_LENGTH,
        max_index_entries: int = MAX_INDEX_ENTRIES,
    ) -> None:
        """Build the delete index.

        Args:
            frequencies: vocabulary token -> frequency.
            min_token_length: shorter query tokens are never corrected (too many
                neighbours at distance 1).
            long_token_length: query tokens at least this long may be 2 edits away.
            max_token_length: longer tokens are never corrected nor proposed.
            max_index_entries: most delete strings indexed; the most frequent tokens
                are indexed first and the others, once it is full, only count as known
                (`unindexed_tokens`).

        Raises:
            ConfigError: lengths below 1, `min_token_length <= long_token_length <=
                max_token_length` not holding, or `max_index_entries < 0`.
        """
        if not 1 <= min_token_length <= long_token_length <= max_token_length:
            raise ConfigError(
                "spell: need 1 <= min_token_length <= long_token_length <= max_token_length, "
                f"got {min_token_length}, {long_token_length} and {max_token_length}"
            )
        if max_index_entries < 0:
            raise ConfigError(f"spell: max_index_entries must be >= 0, got {max_index_entries}")
        self.min_token_length = int(min_token_length)
        self.long_token_length = int(long_token_length)
        self.max_token_length = int(max_token_length)
        self.max_index_entries = int(max_index_entries)
        self.frequencies: dict[str, int] = {
            token: int(count) for token, count in sorted(frequencies.items()) if count > 0
        }
        self._tokens: list[str] = list(self.frequencies)
        self._build_index()

    def _build_index(self) -> None:
        # The delete index as two sorted arrays: the hash of each delete string and the
        # vocabulary token it came from. A dict of strings costs ~9x the memory (230 MB
        # instead of 25 MB for 50k tokens); a hash collision only adds a candidate that
        # the exact distance then rejects. hash() is salted per process: the index is
        # rebuilt on load, never saved. Hashes gather in Python lists (the fastest way
        # to build them) turned into arrays every million, so the lists' 36 bytes per
        # entry never add up.
        keys: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        owners: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        pending_keys: list[int] = []
        pending_owners: list[int] = []

        def flush() -> None:
            keys.append(np.asarray(pending_keys, dtype=np.int64))
            owners.append(np.asarray(pending_owners, dtype=np.int64))
            pending_keys.clear()
            pending_owners.clear()

        entries, self._indexed = 0, np.zeros(len(self._tokens), dtype=bool)
        # A query token of length >= long_token_length may be 2 edits from a vocabulary
        # token 2 characters shorter, so those need their 2-deletes too.
        two_edits_from = self.long_token_length - _MAX_DISTANCE
        # most frequent first, then a-z: the tokens worth proposing get the room
        by_frequency = sorted(range(len(self._tokens)), key=lambda i: -self._frequency(i))
        for token_id in by_frequency:
            token = self._tokens[token_id]
            if len(token) > self.max_token_length or not is_correctable(token):
                continue
            deletes = _deletes(token, _MAX_DISTANCE if len(token) >= two_edits_from else 1)
            size = len(deletes) + 1  # the token itself is not among its deletes
            if entries + size > self.max_index_entries:
                logger.info(
                    "spell: the delete index is full (%d of max_index_entries %d); %d rarer "
                    "tokens are known words but never proposed as corrections",
                    entries,
                    self.max_index_entries,
                    self.unindexed_tokens,
                )
                break
            entries += size
            self._indexed[token_id] = True
            pending_keys.append(hash(token))
            pending_keys.extend(map(hash, deletes))
            pending_owners.extend([token_id] * size)
            if len(pending_keys) >= 1 << 20:
                flush()
        flush()
        flat = np.concatenate(keys)
        order = np.argsort(flat, kind="stable")
        self._keys: np.ndarray[Any, np.dtype[np.int64]] = flat[order]
        self._owners: np.ndarray[Any, np.dtype[np.int64]] = np.concatenate(owners)[order]

    def _frequency(self, token_id: int) -> int:
        return self.frequencies[self._tokens[token_id]]

    @property
    def index_size(self) -> int:
        """Delete strings in the index (at most `max_index_entries`)."""
        return int(self._keys.size)

    @property
    def unindexed_tokens(self) -> int:
        """Correctable tokens left out because the index was full (known, never proposed)."""
        return sum(
            1
            for token_id, token in enumerate(self._tokens)
            if not self._indexed[token_id]
            and len(token) <= self.max_token_length
            and is_correctable(token)
        )

    @classmethod
    def from_token_lists(cls, token_lists: Iterable[list[str]], **options: int) -> Self:
        """A corrector whose frequency of a token is the number of lists holding it."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(set(tokens))
        return cls(counts, **options)

    def __contains__(self, token: object) -> bool:
        """True when `token` is a vocabulary token."""
        return token in self.frequencies

    def __len__(self) -> int:
        """Number of vocabulary tokens."""
        return len(self.frequencies)

    def max_distance(self, token: str) -> int:
        """Edits allowed for a query token: 0 (never corrected), 1, or 2 for long ones.

        0 for tokens shorter than `min_token_length`, longer than `max_token_length`,
        or not in Latin letters.
        """
        if not self.min_token_length <= len(token) <= self.max_token_length:
            return 0
        if not is_correctable(token):
            return 0
        return _MAX_DISTANCE if len(token) >= self.long_token_length else 1

    def neighbourhood(self, token: str) -> set[str]:
        """The strings a query token looks up: itself and its deletes (empty when it is
        known or never corrected); at most 1 + 24 + 276 strings."""
        limit = self.max_distance(token)
        if token in self.frequencies or limit == 0:
            return set()
        return {token, *_deletes(token, limit)}

    def correct(self, token: str) -> str | None:
        """The correction of an unknown token, or None (known, not Latin, too short or
        too long, or no match)."""
        variants = self.neighbourhood(token)
        if not variants:
            return None
        limit = self.max_distance(token)
        wanted = np.fromiter(map(hash, variants), dtype=np.int64, count=len(variants))
        starts = np.searchsorted(self._keys, wanted, side="left")
        ends = np.searchsorted(self._keys, wanted, side="right")
        candidate_ids: set[int] = set()
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            candidate_ids.update(self._owners[start:end].tolist())
        best: tuple[int, int, str] | None = None
        for candidate in (self._tokens[i] for i in candidate_ids):
            distance = osa_distance(token, candidate, limit)
            if distance > limit:
                continue
            key = (distance, -self.frequencies[candidate], candidate)
            if best is None or key < best:
                best = key
        return None if best is None else best[2]

    def corrections(self, tokens: Iterable[str]) -> dict[str, str]:
        """Unknown token -> its correction, for the tokens that have one (in order)."""
        found: dict[str, str] = {}
        for token in tokens:
            if token not in found:
                corrected = self.correct(token)
                if corrected is not None:
                    found[token] = corrected
        return found

    def save(self, path: Path) -> None:
        """Write the vocabulary and settings as one JSON file (tokens sorted)."""
        atomic_write_json(
            path,
            {
                "format": SPELL_FORMAT,
                "format_version": SPELL_FORMAT_VERSION,
                "min_token_length": self.min_token_length,
                "long_token_length": self.long_token_length,
                "max_token_length": self.max_token_length,
                "max_index_entries": self.max_index_entries,
                "tokens": list(self.frequencies),
                "frequencies": list(self.frequencies.values()),
            },
        )

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a file written by `save` and rebuild the delete index.

        Raises:
            ArtifactError: missing, unreadable or not a spell vocabulary.
        """
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
            if (
                spec.get("format") != SPELL_FORMAT
                or spec.get("format_version") != SPELL_FORMAT_VERSION
            ):
                raise ValueError(f"not a {SPELL_FORMAT} file of version {SPELL_FORMAT_VERSION}")
            frequencies = dict(zip(spec["tokens"], spec["frequencies"], strict=True))
            return cls(
                frequencies,
                min_token_length=int(spec["min_token_length"]),
                long_token_length=int(spec["long_token_length"]),
                # files written before the limits existed get today's limits
                max_token_length=int(spec.get("max_token_length", MAX_CORRECTABLE_LENGTH)),
                max_index_entries=int(spec.get("max_index_entries", MAX_INDEX_ENTRIES)),
            )
        except FileNotFoundError:
            raise ArtifactError(f"{path} is missing; retrain the search index") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArtifactError(f"{path} is unreadable ({exc}); retrain the search index") from None


__all__ = [
    "MAX_CORRECTABLE_LENGTH",
    "MAX_INDEX_ENTRIES",
    "SpellCorrector",
    "is_correctable",
    "osa_distance",
]
