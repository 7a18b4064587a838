"""Artifact folders: atomic writes, hashes, manifests, sparse matrices without pickle.

A stage writes into a hidden temporary folder next to its final place and renames it
into place only after every file and the `manifest.json` are written, so a killed
process never leaves a folder that looks complete. A folder is complete exactly when
it holds a `manifest.json`.

State that several processes rewrite (the local registry's `registry.json`, the first
creation of the MLflow database) is changed under `file_lock`. `crash_point` names the
steps of such changes, so that a test can kill the process at each one in turn.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.errors import ArtifactError, ManifestError

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
_TRACKED_LIBRARIES = (
    "numpy",
    "scipy",
    "polars",
    "pyarrow",
    "implicit",
    "bm25s",
    "jieba",
    "pydantic",
)


@functools.cache
def code_version() -> str:
    """The shelfwise version plus a hash of its source files, e.g. `0.1.0+3f2a9c1b7d4e`.

    The source hash makes stage caches and manifests follow code edits, not just
    releases: a changed model file must never reuse an old stage's output.
    """
    try:
        version = metadata.version("shelfwise")
    except metadata.PackageNotFoundError:
        version = "0"
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    return f"{version}+{digest.hexdigest()[:12]}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape results, for manifests."""
    versions = {"python": sys.version.split()[0]}
    for name in _TRACKED_LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (relative posix paths), manifest excluded."""
    return {
        file.relative_to(folder).as_posix(): sha256_file(file)
        for file in sorted(folder.rglob("*"))
        if file.is_file() and file.name != MANIFEST
    }


class Manifest(BaseModel):
    """The `manifest.json` of a stage's output folder."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    stage: str
    run_id: str
    cache_key: str
    config_hash: str
    input_hashes: dict[str, str] = Field(default_factory=dict)
    code_version: str = Field(default_factory=code_version)
    library_versions: dict[str, str] = Field(default_factory=library_versions)
    row_counts: dict[str, int] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)
    peak_memory_mb: float | None = None
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")
    created_at: float = Field(default_factory=time.time)
    reused_from: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


def read_manifest(folder: Path) -> Manifest:
    """Read a stage folder's manifest.

    Raises:
        ManifestError: missing or unreadable manifest.
    """
    path = folder / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{folder} has no {MANIFEST}: the stage never finished") from None
    except ValueError as exc:
        raise ManifestError(f"{path} is unreadable ({exc}); delete the folder to rerun") from None


def is_complete(folder: Path) -> bool:
    """True when `folder` holds a manifest (written last, so the folder is whole)."""
    return (folder / MANIFEST).is_file()


# --- atomic writes -----------------------------------------------------------------


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes to `path` via a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    """Write JSON (indented, UTF-8, keys sorted) atomically."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write a DataFrame to Parquet atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    frame.write_parquet(tmp)
    fsync_path(tmp)
    os.replace(tmp, path)


def write_array(path: Path, array: np.ndarray[Any, Any]) -> None:
    """Write one numpy array as `.npy` (no pickle) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    with tmp.open("wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_array(path: Path) -> np.ndarray[Any, Any]:
    """Read a `.npy` file written by `write_array` (pickle refused).

    Raises:
        ArtifactError: the file holds an object array (only pickle could load it) or is
            not a `.npy` file; numpy's own ValueError would reach a server as a 500.
    """
    try:
        return np.load(path, allow_pickle=False)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ArtifactError(
            f"{path} cannot be read without pickle ({exc}); shelfwise never loads pickled "
            "arrays: rebuild the artifact"
        ) from None


def write_csr(path: Path, matrix: sp.csr_matrix | sp.csr_array) -> None:
    """Write a CSR matrix as an `.npz` of plain arrays (no pickle) atomically."""
    csr = sp.csr_matrix(matrix)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    with tmp.open("wb") as handle:
        np.savez(
            handle,
            data=csr.data,
            indices=csr.indices,
            indptr=csr.indptr,
            shape=np.asarray(csr.shape, dtype=np.int64),
        )
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_csr(path: Path) -> sp.csr_matrix:
    """Read a CSR matrix written by `write_csr`."""
    with np.load(path, allow_pickle=False) as arrays:
        shape = tuple(int(n) for n in arrays["shape"])
        return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces `final` when the block succeeds.

    The caller writes every file, the manifest last. On an exception the temporary
    folder is removed and `final` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete `.*.tmp-*` leftovers of killed processes under `folder`; return how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for leftover in folder.rglob(".*.tmp-*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def link_or_copy_tree(source: Path, target: Path) -> None:
    """Recreate `source` at `target` with hard links where possible (cheap reuse)."""

    def link(src: str, dst: str) -> object:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return dst

    shutil.copytree(source, target, copy_function=link)


# --- locks and crash points ----------------------------------------------------------

# (lock file, thread) -> depth: a thread that holds a lock may take it again (a store's
# method calling another); other threads and processes wait.
_HELD: dict[tuple[str, int], int] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created when missing) for the block.

    Written here rather than taken from `filelock`, which is no core dependency: on
    POSIX it is this same `flock` call. The kernel drops a `flock` lock when its
    process dies, so a kill -9 never leaves a stale lock behind (a lock *file* with a
    pid in it would). Reentrant within one thread; other threads and processes block.
    """
    key = (str(path.resolve()), threading.get_ident())
    with _HELD_GUARD:
        depth = _HELD.get(key, 0)
        if depth:
            _HELD[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock_fd(fd)
        with _HELD_GUARD:
            _HELD[key] = 1
        try:
            yield
        finally:
            with _HELD_GUARD:
                del _HELD[key]
            _unlock_fd(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - CI runs on Linux
    import msvcrt

    def _lock_fd(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after 10 s; keep waiting
                continue

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


CrashHook = Callable[[str], None]
_crash_hook: CrashHook | None = None


def crash_point(step: str) -> None:
    """Mark a step of a multi-step state change (publish, registry setup).

    A no-op unless a test installed a hook (`set_crash_hook`): the kill-at-every-step
    tests run the pipeline in a child process whose hook SIGKILLs it at one named step,
    then check that a fresh process finishes the job with the same result.
    """
    if _crash_hook is not None:
        _crash_hook(step)


def set_crash_hook(hook: CrashHook | None) -> None:
    """Install (or remove, with None) the function `crash_point` calls with each step."""
    global _crash_hook
    _crash_hook = hook
