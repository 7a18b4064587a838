"""Cutting a text stream into chunks of whole records, and isolating broken ones.

A parser that reads a whole file lets one bad record spoil everything after it: an
unclosed quote makes the rest of the file one field, and pyarrow refuses a record
larger than its block ("straddling object straddles two block boundaries"). Here
the stream is cut only between records, so every chunk parses on its own with a
block as large as the chunk, and a record that cannot end is reduced to its first
line, handed back as `broken` and quarantined; reading resumes on the next line.

CSV quoting follows pyarrow's parser: a quote opens a quoted field only at the start
of a field (after the delimiter, a line break or at the start of the data), `""`
inside a quoted field is a literal quote, and a quote inside an unquoted field is an
ordinary character. Scanning costs one `bytes.find` per quote, and nothing when a
chunk holds no quotes (most event logs).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

TARGET_BYTES: Final = 8 << 20  # records handed to the parser at once
# A record still open after this many bytes is taken as broken (an unclosed quote):
# far above any legitimate field (validate's longest limit is 64 KiB by default).
MAX_RECORD_BYTES: Final = 16 << 20
_NEWLINE: Final = 0x0A

ChunkKind = Literal["records", "broken", "long-line", "truncated"]


@dataclass(frozen=True)
class Chunk:
    """Whole records, a broken record's first line (an unclosed quote), the start of
    a line longer than `MAX_RECORD_BYTES`, or the cut-off tail of a damaged file."""

    kind: ChunkKind
    data: bytes


def record_chunks(
    blocks: Iterable[bytes],
    *,
    quote: bytes | None,
    delimiter: bytes,
    ended_early: Callable[[], bool] = lambda: False,
    target_bytes: int = TARGET_BYTES,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Chunk]:
    """Chunks of whole records from a stream of text blocks.

    Args:
        blocks: the file's UTF-8 blocks in order.
        quote: the quote character (CSV), or None when quotes are ordinary (TSV, JSON
            lines, sequence files).
        delimiter: the field delimiter (where a quoted field may start).
        ended_early: asked once the blocks are exhausted; true means the stream was
            cut (damage kept by data.allow_partial_files), so an incomplete last
            record is `truncated` rather than a record without a final line break.
        target_bytes: about how many bytes of records each chunk holds.
        max_record_bytes: a record longer than this is broken (see the module doc).
    """
    pending = b""
    skipping = False  # inside an over-long line already reported as broken
    for block in blocks:
        if skipping:
            line_end = block.find(b"\n")
            if line_end < 0:
                continue
            block, skipping = block[line_end + 1 :], False
        pending += block
        if len(pending) >= target_bytes:
            pending, skipping = yield from _drain(
                pending, quote, delimiter, max_record_bytes, final=False
            )
    if skipping:
        return
    if ended_early():
        cut, _ = _record_end(pending, quote, delimiter, pending.rfind(b"\n") + 1)
        if cut:
            yield Chunk("records", pending[:cut])
        if pending[cut:].strip():
            yield Chunk("truncated", pending[cut:])
        return
    if pending and not pending.endswith(b"\n"):
        pending += b"\n"
    while pending:
        pending, _ = yield from _drain(pending, quote, delimiter, max_record_bytes, final=True)


def _drain(
    pending: bytes, quote: bytes | None, delimiter: bytes, max_record_bytes: int, *, final: bool
) -> Generator[Chunk, None, tuple[bytes, bool]]:
    """Yield what `pending` holds of whole (or broken) records; return (rest, skipping).

    Not final: keeps the incomplete last record. Final (the data ends with a line
    break): a record still open at the end is broken. A broken record yields its
    first line and draining resumes after it; a line longer than `max_record_bytes`
    yields its start and the caller skips the rest of it (`skipping`).
    """
    end = pending.rfind(b"\n") + 1
    if end == 0:
        if len(pending) > max_record_bytes:
            yield Chunk("long-line", pending)
            return b"", True
        return pending, False
    cut, open_start = _record_end(pending, quote, delimiter, end)
    if cut:
        yield Chunk("records", pending[:cut])
    rest = pending[cut:]
    if open_start is None or not (final or len(rest) > max_record_bytes):
        return rest, False
    line_end = rest.find(b"\n") + 1 or len(rest)
    yield Chunk("broken", rest[:line_end])
    return rest[line_end:], False


def _record_end(
    data: bytes, quote: bytes | None, delimiter: bytes, end: int
) -> tuple[int, int | None]:
    """Where the last whole record in `data[:end]` ends, and where an open one starts.

    `end` must follow a line break (or be the data's length at the end of a file).

    Returns:
        (cut, open_start): `data[:cut]` holds whole records; `open_start` is the start
        of a record whose quoted field is still open at `end` (then `cut ==
        open_start`), or None.
    """
    if quote is None or data.find(quote, 0, end) < 0:
        return end, None
    quote_byte = quote[0]
    delimiter_byte = delimiter[0] if delimiter else -1
    record_start = 0  # start of the record being scanned
    outside_from = 0  # where the scan last left a quoted field
    opened: int | None = None
    position = data.find(quote, 0, end)
    while position >= 0:
        if opened is None:
            previous = data[position - 1] if position else _NEWLINE
            if previous in (_NEWLINE, delimiter_byte, 0x0D):
                line_break = data.rfind(b"\n", outside_from, position)
                if line_break >= 0:
                    record_start = line_break + 1
                opened = position
            position = data.find(quote, position + 1, end)
            continue
        if position + 1 < end and data[position + 1] == quote_byte:  # "" inside quotes
            position = data.find(quote, position + 2, end)
            continue
        opened = None
        outside_from = position + 1
        position = data.find(quote, position + 1, end)
    if opened is None:
        return end, None
    return record_start, record_start
