"""Finding a source's files and guessing their format (reading them: `_streams`)."""

from __future__ import annotations

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
