"""Finding a source's files, guessing their format, and reading their bytes.

gzip files are decompressed here with `zlib` (wbits=31, several members allowed) in
chunks, so a file cut off mid-download still yields every byte that was written:
the caller keeps the complete lines and quarantines the partial last one.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shelfwise.config import FileFormat
from shelfwise.errors import InputFileError

ResolvedFormat = str  # one of FileFormat without "auto"

EXTENSION_FORMATS: Final[dict[str, str]] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".inter": "recbole",
    ".item": "recbole",
    ".user": "recbole",
    ".txt": "sequence",
}
_CHUNK_BYTES: Final = 1 << 22


def base_suffix(path: Path) -> str:
    """The extension after stripping `.gz`, lower-cased (`a.csv.gz` -> `.csv`)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    return Path(name).suffix


def guess_format(path: Path) -> str | None:
    """The format a file's extension implies, or None when unknown."""
    return EXTENSION_FORMATS.get(base_suffix(path))


def resolve_files(
    path: Path, file_format: FileFormat, *, config_key: str
) -> tuple[list[Path], str]:
    """The files to read for one source and their (single) format.

    Args:
        path: the configured file or folder; a folder's Hive-style partition
            subfolders (`date=…/hour=…/`) are read too.
        file_format: the configured format; "auto" guesses from the extension(s).
        config_key: e.g. "data.events", for error messages.

    Raises:
        InputFileError: missing path, empty folder, unknown or mixed formats.
    """
    if not path.exists():
        raise InputFileError(
            f"{config_key}.path: {path} does not exist; fix the path in your config "
            f"(relative paths are resolved against the config file's folder)"
        )
    if path.is_file():
        resolved = file_format if file_format != "auto" else guess_format(path)
        if resolved is None:
            raise InputFileError(
                f"{config_key}: cannot guess the format of {path.name} from its extension; "
                f"set {config_key}.format to one of csv, tsv, parquet, jsonl, recbole, sequence"
            )
        return [path], resolved
    candidates = sorted(_folder_files(path))
    if file_format == "auto":
        files = [p for p in candidates if guess_format(p) is not None]
        formats = sorted({str(guess_format(p)) for p in files})
        if len(formats) > 1:
            raise InputFileError(
                f"{config_key}: folder {path} mixes formats {', '.join(formats)}; keep one "
                f"format per folder or set {config_key}.format to choose one"
            )
    else:
        files = [p for p in candidates if guess_format(p) == file_format]
        formats = [file_format]
    if not files:
        known = ", ".join(sorted(EXTENSION_FORMATS))
        raise InputFileError(
            f"{config_key}: folder {path} holds no data files (looked for {known}, "
            f"optionally .gz); point {config_key}.path at the file or the right folder"
        )
    return files, formats[0]


def _folder_files(folder: Path) -> list[Path]:
    """The files of a folder and of its Hive-style partition folders (`date=2025-05-01/`,
    any depth), e.g. the serving event log; other subfolders and hidden names are skipped.
    """
    found: list[Path] = []
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            found.append(entry)
        elif entry.is_dir() and "=" in entry.name:
            found.extend(_folder_files(entry))
    return found


@dataclass(frozen=True)
class LoadedBytes:
    """A file's (decompressed) bytes and whether they are complete."""

    data: bytes
    complete: bool
    problem: str = ""  # why the data is incomplete, for warnings


def load_bytes(path: Path) -> LoadedBytes:
    """Read a file, gunzipping `*.gz` as far as the stream allows.

    Raises:
        InputFileError: the file cannot be opened.
    """
    try:
        if not path.name.lower().endswith(".gz"):
            return LoadedBytes(path.read_bytes(), complete=True)
        return _gunzip(path)
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _gunzip(path: Path) -> LoadedBytes:
    parts: list[bytes] = []
    decompressor = zlib.decompressobj(wbits=31)
    problem = ""
    with path.open("rb") as handle:
        while not problem and (chunk := handle.read(_CHUNK_BYTES)):
            data = chunk
            while data:
                if decompressor.eof:  # a further gzip member follows
                    decompressor = zlib.decompressobj(wbits=31)
                try:
                    parts.append(decompressor.decompress(data))
                except zlib.error as exc:
                    problem = f"corrupt gzip data ({exc})"
                    break
                data = decompressor.unused_data if decompressor.eof else b""
    if not problem and not decompressor.eof:
        try:
            parts.append(decompressor.flush())
        except zlib.error:  # pragma: no cover - flush of a cut stream rarely fails
            pass
        problem = "the gzip stream ends early (file cut off, e.g. an interrupted download)"
    return LoadedBytes(b"".join(parts), complete=not problem, problem=problem)


def split_complete_lines(
    data: bytes, *, quote: bytes | None = None, delimiter: bytes = b","
) -> tuple[bytes, bytes]:
    """Split incomplete data into (complete records, partial last record).

    The cut is placed after the last newline. With a quote character, when that
    newline lies inside an open quoted field (odd number of quotes before it), the
    cut moves back to the line where that field's record started.
    """
    cut = data.rfind(b"\n") + 1
    if quote is not None and data.count(quote, 0, cut) % 2 == 1:
        opener = _open_quote_position(data, quote, delimiter, cut)
        cut = data.rfind(b"\n", 0, opener) + 1
    return data[:cut], data[cut:]


def _open_quote_position(data: bytes, quote: bytes, delimiter: bytes, end: int) -> int:
    """Index of the quote that opens the field still open at `end`.

    Quotes before `end` come in pairs except this one; it is the last quote that
    has an even number of quotes before it and starts a field (follows a newline,
    the delimiter or the start of the data).
    """
    count = data.count(quote, 0, end)
    position = end
    while True:
        position = data.rfind(quote, 0, position)
        if position < 0:
            return 0
        count -= 1  # quotes strictly before `position`
        starts_field = position == 0 or data[position - 1 : position] in (b"\n", delimiter)
        if count % 2 == 0 and starts_field:
            return position
