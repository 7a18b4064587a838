"""A content-addressed cache of item vectors, so unchanged products are never re-encoded.

A vector is keyed by sha256(encoder model id, text): a changed text, a new encoder or
a new encoder version all miss, and the same text in two catalogs hits. Vectors live
as plain `.npy` files (no pickle) in one folder per encoder:

```
<cache_dir>/<sha256(model_id)[:16]>/
  encoder.json                     model id and dimension, for people reading the folder
  vectors-<shard>.npy              (n, dim) float32
  keys-<shard>.npy                 (n,) 32-byte sha256 digests, written after the vectors
```

New vectors go into a new shard, written atomically (temporary file and rename; the
keys file last, so a shard without keys is ignored), which makes appends safe with
several processes at once. Once there are more than `MAX_SHARDS` shards they are merged
into one. A shard that disappears while it is being read (merged by another process)
only costs a cache miss.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise._internal import progress as progress_bars
from shelfwise._internal.artifacts import atomic_write_json, read_array, write_array
from shelfwise.contracts import BoolArray, FloatArray, IntArray
from shelfwise.errors import ConfigError, DataError
from shelfwise.text.encoders import TextEncoder

logger = logging.getLogger(__name__)

MAX_SHARDS = 16
FLUSH_EVERY = 4096  # vectors encoded between two writes: an interrupted run keeps them
_KEY_DTYPE = np.dtype("S32")
KeyArray = np.ndarray[Any, np.dtype[np.bytes_]]


FIELD_SEPARATOR = "\n"


def clean_text(text: str | None) -> str:
    """`text` with runs of whitespace collapsed to one space ("" for None)."""
    return " ".join(text.split()) if text else ""


def item_texts(
    fields: Mapping[str, Sequence[str | None]], order: Sequence[str], max_chars: int
) -> list[str | None]:
    """One text per item: its non-empty `order` fields joined by newlines, cut to `max_chars`.

    This is the text dense search encodes (and so the text the cache is keyed by).
    Fields missing from `fields` are skipped; an item with no text at all gets None.

    Raises:
        DataError: the field lists differ in length.
    """
    used = [fields[name] for name in order if name in fields]
    lengths = {name: len(texts) for name, texts in fields.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"dense: every field needs one text per item; lengths differ: {lengths}")
    n_items = next(iter(lengths.values()), 0)
    texts: list[str | None] = []
    for item_index in range(n_items):
        parts = [part for column in used if (part := clean_text(column[item_index]))]
        texts.append(FIELD_SEPARATOR.join(parts)[:max_chars] if parts else None)
    return texts


def text_key(model_id: str, text: str) -> bytes:
    """The cache key of one item text: sha256 over the encoder's model id and the text."""
    return hashlib.sha256(f"{model_id}\0passage\0{text}".encode()).digest()


class EmbeddingCache:
    """Passage vectors of one encoder, stored under `root` (see the module docstring).

    Inputs:
        keys: `text_key` digests; vectors: (n, dim) float32.

    Relations:
        `encode_with_cache` is the usual entry point; this class is its storage.

    Example:
        >>> import tempfile
        >>> cache = EmbeddingCache(Path(tempfile.mkdtemp()), "toy-encoder", dim=2)
        >>> cache.put([text_key("toy-encoder", "a")], np.ones((1, 2), np.float32))
        >>> cache.get([text_key("toy-encoder", "a"), text_key("toy-encoder", "b")])[0]
        array([ True, False])
    """

    def __init__(self, root: Path, model_id: str, dim: int) -> None:
        """Open (and create) the folder of encoder `model_id` under `root`."""
        if dim < 1:
            raise ConfigError(f"embedding cache: dim must be >= 1, got {dim}")
        self.model_id = model_id
        self.dim = dim
        self.folder = root / hashlib.sha256(model_id.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "encoder.json"
        if not info.exists():
            atomic_write_json(info, {"model_id": model_id, "dim": dim})

    def _shards(self) -> list[str]:
        return sorted(path.name[len("keys-") : -len(".npy")] for path in self._key_files())

    def _key_files(self) -> list[Path]:
        return sorted(self.folder.glob("keys-*.npy"))

    def _read_shard(self, shard: str) -> tuple[KeyArray, FloatArray] | None:
        """A shard's keys and memory-mapped vectors; None if gone or damaged."""
        try:
            keys = read_array(self.folder / f"keys-{shard}.npy")
            vectors = np.load(
                self.folder / f"vectors-{shard}.npy", mmap_mode="r", allow_pickle=False
            )
        except FileNotFoundError:
            return None  # merged away by another process meanwhile: a cache miss
        except ValueError as exc:
            logger.warning("embedding cache: ignoring damaged shard %s (%s)", shard, exc)
            return None
        if keys.dtype != _KEY_DTYPE or vectors.shape != (keys.shape[0], self.dim):
            logger.warning(
                "embedding cache: ignoring shard %s of %s (keys %s %s, vectors %s; dim %d)",
                shard,
                self.folder,
                keys.dtype,
                keys.shape,
                vectors.shape,
                self.dim,
            )
            return None
        return keys, vectors

    def __len__(self) -> int:
        """Number of stored vectors (a key stored in two shards counts twice)."""
        return sum(keys.shape[0] for keys, _ in self._read_all())

    def _read_all(self) -> list[tuple[KeyArray, FloatArray]]:
        return [shard for name in self._shards() if (shard := self._read_shard(name))]

    def contains(self, keys: Sequence[bytes]) -> BoolArray:
        """Which keys are cached, reading only the shards' keys (no vectors)."""
        wanted = np.asarray(keys, dtype=_KEY_DTYPE)
        found = np.zeros(wanted.shape[0], dtype=np.bool_)
        for name in self._shards():
            try:
                stored = read_array(self.folder / f"keys-{name}.npy")
            except (FileNotFoundError, ValueError):
                continue  # merged away meanwhile, or damaged: a miss
            if stored.dtype == _KEY_DTYPE and stored.size:
                found |= np.isin(wanted, stored)
        return found

    def get(self, keys: Sequence[bytes]) -> tuple[BoolArray, FloatArray]:
        """Which keys are cached, and their vectors ((len(keys), dim), zeros if missing)."""
        wanted = np.asarray(keys, dtype=_KEY_DTYPE)
        found = np.zeros(wanted.shape[0], dtype=np.bool_)
        vectors = np.zeros((wanted.shape[0], self.dim), dtype=np.float32)
        if wanted.size == 0:
            return found, vectors
        for stored_keys, stored_vectors in self._read_all():
            if found.all():
                break
            order = np.argsort(stored_keys)
            sorted_keys = stored_keys[order]
            open_rows = np.flatnonzero(~found)
            positions = np.searchsorted(sorted_keys, wanted[open_rows])
            positions[positions == sorted_keys.size] = 0
            hit = sorted_keys[positions] == wanted[open_rows]
            vectors[open_rows[hit]] = stored_vectors[order[positions[hit]]]
            found[open_rows[hit]] = True
        return found, vectors

    def put(self, keys: Sequence[bytes], vectors: FloatArray) -> None:
        """Append vectors as a new shard (atomically); merge shards when too many."""
        key_array = np.asarray(keys, dtype=_KEY_DTYPE)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (key_array.shape[0], self.dim):
            raise ValueError(
                f"embedding cache: {key_array.shape[0]} keys but vectors of shape "
                f"{vectors.shape} (dim {self.dim})"
            )
        if key_array.size == 0:
            return
        self._write_shard(key_array, vectors)
        if len(self._key_files()) > MAX_SHARDS:
            self.compact()

    def _write_shard(self, keys: KeyArray, vectors: FloatArray) -> str:
        shard = uuid.uuid4().hex
        write_array(self.folder / f"vectors-{shard}.npy", vectors)
        write_array(self.folder / f"keys-{shard}.npy", keys)  # last: marks it complete
        return shard

    def compact(self) -> None:
        """Merge all shards into one (duplicate keys kept once)."""
        names = self._shards()
        shards = [(name, shard) for name in names if (shard := self._read_shard(name))]
        if len(shards) < 2:
            return
        keys = np.concatenate([keys for _, (keys, _) in shards])
        vectors = np.concatenate([np.asarray(vectors) for _, (_, vectors) in shards])
        keys, first = np.unique(keys, return_index=True)
        self._write_shard(keys, vectors[first])
        for name, _ in shards:
            # keys first: a reader never sees keys without their vectors
            (self.folder / f"keys-{name}.npy").unlink(missing_ok=True)
            (self.folder / f"vectors-{name}.npy").unlink(missing_ok=True)


def encode_with_cache(
    encoder: TextEncoder,
    texts: Sequence[str],
    cache_dir: Path | None,
    *,
    batch_size: int = 64,
    progress: bool = True,
) -> FloatArray:
    """Passage vectors of `texts`, encoding only texts not seen before.

    Identical texts are encoded once. With a `cache_dir`, vectors of earlier runs are
    reused and new ones appended every `FLUSH_EVERY` vectors, so an interrupted run
    keeps most of its work.

    Args:
        encoder: the text encoder (its `model_id` keys the cache).
        texts: item texts, one per row of the result.
        cache_dir: the cache root (the pipeline passes `<home>/cache/embeddings`);
            None encodes everything without caching.
        batch_size: texts per encoder call (>= 1).
        progress: show a bar when progress bars are on (`_internal.progress`).

    Returns:
        (len(texts), encoder.dim) float32, unit rows.

    Raises:
        ConfigError: batch_size < 1.
    """
    if batch_size < 1:
        raise ConfigError(f"embedding batch_size must be >= 1, got {batch_size}")
    unique: dict[str, int] = {}
    rows = np.fromiter(
        (unique.setdefault(text, len(unique)) for text in texts), dtype=np.int64, count=len(texts)
    )  # row of each text among the distinct texts
    unique_texts = list(unique)
    keys = [text_key(encoder.model_id, text) for text in unique_texts]
    cache = EmbeddingCache(cache_dir, encoder.model_id, encoder.dim) if cache_dir else None
    if cache is not None:
        found, vectors = cache.get(keys)
    else:
        found = np.zeros(len(unique_texts), dtype=np.bool_)
        vectors = np.zeros((len(unique_texts), encoder.dim), dtype=np.float32)
    missing = np.flatnonzero(~found)
    # Shortest first: a batch then holds texts of about one length, so a batched
    # encoder (ONNX, sentence-transformers) pads little; order never changes a vector.
    missing = missing[np.argsort([len(unique_texts[i]) for i in missing], kind="stable")]
    if missing.size:
        logger.info(
            "encoding %d of %d distinct texts with %s (%d cached)",
            missing.size,
            len(unique_texts),
            encoder.model_id,
            int(found.sum()),
        )
    batches = [missing[start : start + batch_size] for start in range(0, missing.size, batch_size)]
    if progress:
        batches_iter = progress_bars.track(batches, f"encoding {missing.size} texts", len(batches))
    else:
        batches_iter = iter(batches)
    pending: list[IntArray] = []
    for batch in batches_iter:
        encoded = encoder.encode_passages([unique_texts[i] for i in batch])
        if encoded.shape != (batch.size, encoder.dim):
            raise ValueError(
                f"encoder {encoder.name} returned shape {encoded.shape} for {batch.size} texts"
            )
        vectors[batch] = encoded
        pending.append(batch)
        if cache is not None and sum(p.size for p in pending) >= FLUSH_EVERY:
            _flush(cache, keys, vectors, pending)
    if cache is not None and pending:
        _flush(cache, keys, vectors, pending)
    return vectors[rows]


def _flush(
    cache: EmbeddingCache, keys: list[bytes], vectors: FloatArray, pending: list[IntArray]
) -> None:
    """Store the vectors of the `pending` rows, then forget them."""
    rows = np.concatenate(pending)
    cache.put([keys[i] for i in rows], vectors[rows])
    pending.clear()


__all__ = [
    "FIELD_SEPARATOR",
    "FLUSH_EVERY",
    "MAX_SHARDS",
    "EmbeddingCache",
    "clean_text",
    "encode_with_cache",
    "item_texts",
    "text_key",
]
