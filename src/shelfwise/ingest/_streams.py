"""A file's bytes as a stream of blocks: gunzipped, checked for damage, made UTF-8.

Nothing here holds a whole file: blocks of a few MiB flow from the disk through
`zlib` (gzip, several members allowed) and a text decoder to the record chunker.

Damage is any decompression error, a failed CRC, or a stream that ends early. It is
located to the byte: on a zlib error the failing input block is bisected with copies
of the decompressor, so the message names the first compressed byte zlib refuses.
By default damage raises `DamagedFileError` (exit code 4); with
`data.allow_partial_files` the stream stops there, keeps every byte decoded before
the damage and records it in `damage` for the caller's warning.
"""

from __future__ import annotations

import codecs
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shelfwise.errors import DamagedFileError, InputFileError

_READ_BYTES: Final = 1 << 20  # compressed bytes fed to zlib at once
_SNIFF_BYTES: Final = 4096
_BOMS: Final = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Multi-byte encodings fail loudly: a decoding error there means the file is in another
# encoding. Single-byte cp1252 leaves five bytes undefined; like invalid UTF-8 they
# become U+FFFD and their rows are quarantined as undecodable-text.
_STRICT: Final = frozenset({"utf-16", "utf-32", "gb18030"})
_PYTHON_CODEC: Final = {"latin-1": "latin-1", "cp1252": "cp1252", "gb18030": "gb18030"}


@dataclass(frozen=True)
class Damage:
    """Where and how a file is damaged."""

    problem: str  # e.g. "corrupt gzip data (invalid distance too far back)"
    offset: int  # byte offset in the file as stored (compressed bytes for .gz)

    def describe(self, path: Path) -> str:
        """One phrase naming the file, the byte offset and the problem."""
        return f"{path} is damaged at byte {self.offset:,}: {self.problem}"


class ByteBlocks:
    """The (gunzipped) bytes of one file, block by block.

    Args:
        path: the file; names ending in `.gz` are decompressed.
        allow_partial: stop quietly at damage (recorded in `damage`) instead of raising.
    """

    def __init__(self, path: Path, *, allow_partial: bool) -> None:
        self.path = path
        self.allow_partial = allow_partial
        self.damage: Damage | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise InputFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with handle:
            if not self.path.name.lower().endswith(".gz"):
                while block := handle.read(_READ_BYTES):
                    yield block
                return
            yield from self._gunzip(handle)

    def _gunzip(self, handle: object) -> Iterator[bytes]:
        read = handle.read  # type: ignore[attr-defined]
        decompressor = zlib.decompressobj(wbits=31)
        offset = 0  # compressed bytes consumed before `chunk`
        while chunk := read(_READ_BYTES):
            data = chunk
            base = offset
            while data:
                if decompressor.eof:  # a further gzip member follows
                    decompressor = zlib.decompressobj(wbits=31)
                before = decompressor.copy()
                try:
                    out = decompressor.decompress(data)
                except zlib.error as exc:
                    position, good = _locate(before, data)
                    yield good
                    self._fail(Damage(_zlib_problem(exc), base + position))
                    return
                if out:
                    yield out
                rest = decompressor.unused_data if decompressor.eof else b""
                base += len(data) - len(rest)
                data = rest
            offset += len(chunk)
        if not decompressor.eof:
            tail = decompressor.flush()
            if tail:
                yield tail
            self._fail(
                Damage(
                    f"the gzip stream ends early after {offset:,} bytes: the file is cut off "
                    "(e.g. an interrupted download)",
                    offset,
                )
            )

    def _fail(self, damage: Damage) -> None:
        self.damage = damage
        if not self.allow_partial:
            raise DamagedFileError(
                f"{damage.describe(self.path)}. Download or export the file again; to train "
                "on the rows before the damage instead, set data.allow_partial_files: true"
            )


def _zlib_problem(exc: zlib.error) -> str:
    if "data check" in str(exc) or "length check" in str(exc):
        return (
            "the data does not match the gzip checksum stored at this byte (CRC-32 or "
            "length): bytes before it are corrupt, and gzip cannot tell where"
        )
    return f"corrupt gzip data ({exc})"


def _locate(before: zlib._Decompress, data: bytes) -> tuple[int, bytes]:
    """The offset in `data` of the first byte zlib refuses, and the bytes before it.

    `before` is a copy of the decompressor taken before `data` was fed; feeding a
    prefix either fails (the bad byte is inside) or not, so bisection finds it.
    """
    low, high = 0, len(data)  # data[:low] decompresses; data[:high] fails
    while high - low > 1:
        middle = (low + high) // 2
        try:
            before.copy().decompress(data[:middle])
        except zlib.error:
            high = middle
        else:
            low = middle
    try:
        good = before.copy().decompress(data[:low])
    except zlib.error:  # pragma: no cover - low never fails by construction
        good = b""
    return high - 1, good


class TextBlocks:
    """UTF-8 blocks of a text file in any supported encoding.

    Args:
        raw: the file's byte blocks.
        encoding: the configured encoding ("auto" reads a BOM, else expects UTF-8).
        config_key: e.g. "data.events", for error messages.

    Raises (while iterating):
        InputFileError: the bytes are not in the configured encoding, naming the file,
            the encoding and the byte offset.
    """

    def __init__(self, raw: ByteBlocks, encoding: str, *, config_key: str) -> None:
        self.raw = raw
        self.encoding = encoding
        self.config_key = config_key
        self.resolved = encoding  # after BOM detection

    def __iter__(self) -> Iterator[bytes]:
        blocks = iter(self.raw)
        first = b""
        for block in blocks:  # at least _SNIFF_BYTES (or the whole file) to look at
            first += block
            if len(first) >= _SNIFF_BYTES:
                break
        if not first:
            return
        codec, skip = self._choose(first)
        self.resolved = codec
        if codec == "utf-8":
            yield first[skip:]
            yield from blocks
            return
        decoder = codecs.getincrementaldecoder(_PYTHON_CODEC.get(codec, codec))(
            errors="strict" if codec in _STRICT else "replace"
        )
        consumed = 0
        for block in _chain(first, blocks):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise self._undecodable(codec, consumed + exc.start, block[exc.start]) from None
            if consumed == 0:
                text = text.removeprefix("\ufeff")
            consumed += len(block)
            yield text.encode("utf-8")
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise self._undecodable(codec, consumed, None, detail=exc.reason) from None
        if tail:
            yield tail.encode("utf-8")

    def _choose(self, first: bytes) -> tuple[str, int]:
        """The codec to use and the number of leading bytes to skip (a UTF-8 BOM)."""
        bom = next(((mark, name) for mark, name in _BOMS if first.startswith(mark)), None)
        if self.encoding == "auto":
            if bom is None:
                self._require_utf8(first)
                return "utf-8", 0
            return bom[1], len(bom[0]) if bom[1] == "utf-8" else 0
        if self.encoding == "utf-8":
            if bom is not None and bom[1] != "utf-8":
                raise self._wrong_encoding(f"it starts with a {bom[1].upper()} byte order mark")
            if first.count(0) > len(first) // 8:
                raise self._wrong_encoding("it is full of NUL bytes, as UTF-16 text is")
            return "utf-8", len(codecs.BOM_UTF8) if bom is not None else 0
        return self.encoding, 0

    def _require_utf8(self, first: bytes) -> None:
        try:
            first.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.end < len(first) - 3:  # not merely a character cut at the sample's end
                raise InputFileError(
                    f"{self.raw.path}: {self.config_key}.encoding is auto, the file has no "
                    f"byte order mark and byte {exc.start:,} (0x{first[exc.start]:02x}) is "
                    f"not UTF-8; set {self.config_key}.encoding to the file's encoding, e.g. "
                    "cp1252 (Excel on Windows, Western Europe), gb18030 (Chinese) or latin-1"
                ) from None

    def _wrong_encoding(self, why: str) -> InputFileError:
        return InputFileError(
            f"{self.raw.path}: cannot read as {self.encoding}: {why}; set "
            f"{self.config_key}.encoding: utf-16 (or auto, which reads the byte order mark)"
        )

    def _undecodable(
        self, codec: str, offset: int, byte: int | None, *, detail: str = ""
    ) -> InputFileError:
        what = f"byte 0x{byte:02x}" if byte is not None else f"the end ({detail})"
        where = "decompressed byte" if self.raw.path.name.lower().endswith(".gz") else "byte"
        return InputFileError(
            f"{self.raw.path}: cannot decode as {codec}: {what} at {where} {offset:,} is not "
            f"valid {codec}; set {self.config_key}.encoding to the file's encoding (utf-8, "
            "utf-16, gb18030, cp1252, latin-1)"
        )


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
