"""Diversity (issue 17): what MMR re-ranking costs in NDCG@10 and buys in diversity.

For each data set an EASE recommender (shelfwise's, λ = 250) is fitted on the train
split; for every test user its 50 best unseen items are re-ranked to 10 by
`shelfwise.runtime.diversity.diversify` (the serving code path) at λ = 0, 0.1, 0.3, 0.5,
0.7, and we report:

* NDCG@10 against the user's test items (binary gains) and its change from λ = 0;
* intra-list diversity (ILD@10): 1 − the mean pairwise similarity of the list, with the
  similarity MMR itself uses;
* catalog coverage@10: the share of items that appear in at least one list.

Data sets:

* ml-100k, RecBole's seed-2020 random split (`../shared/data/ml-100k`); similarity:
  cosine of the movies' genre vectors (multi-hot, unit rows: the "item vectors" path);
* the generated shop (`shelfwise.sample.generate_shop`), per-user random 80/20 split
  (seeded); similarity: content (0.5 same category + 0.5 same brand).

Also times one MMR re-rank of 50 → 10 (the serving cost of `mmr_lambda > 0`).

Usage:
    .venv/bin/python benchmarks/diversity.py [--users 2000] [--items 1000]
        [--events 100000] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.retrieval.ease import EASERecommender
from shelfwise.runtime.catalog import ScoredItem
from shelfwise.runtime.diversity import DiversityOptions, diversify, intra_list_similarity

LAMBDAS = (0.0, 0.1, 0.3, 0.5, 0.7)
K = 10
DEPTH = 50
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _ndcg(ranked: list[int], targets: set[int]) -> float:
    gains = [1.0 / np.log2(rank + 2) for rank, item in enumerate(ranked) if item in targets]
    ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(len(targets), K)))
    return float(sum(gains) / ideal) if ideal else 0.0


def _evaluate(
    train: sp.csr_matrix,
    seen: sp.csr_matrix,
    targets: dict[int, set[int]],
    categories: list[str | None],
    brands: list[str | None],
    vectors: np.ndarray | None,
) -> list[dict[str, float]]:
    """NDCG@10, ILD@10 and coverage@10 per λ over the test users."""
    model = EASERecommender(l2=250.0)
    model.fit(train)
    users = np.array(sorted(targets), dtype=np.int64)
    rows: list[dict[str, float]] = []
    candidates: dict[int, list[int]] = {}
    for start in range(0, users.size, 256):
        batch = users[start : start + 256]
        scores = np.asarray(model.score(train[batch]), dtype=np.float32)
        blocked = seen[batch].toarray() > 0
        scores[blocked] = -np.inf
        top = np.argpartition(-scores, DEPTH, axis=1)[:, :DEPTH]
        for row, user in enumerate(batch):
            order = top[row][np.argsort(-scores[row, top[row]], kind="stable")]
            candidates[int(user)] = [int(i) for i in order]
    for mmr_lambda in LAMBDAS:
        options = DiversityOptions(mmr_lambda=mmr_lambda, max_per_brand=None)
        ndcgs, ilds, shown = [], [], set()
        for user, items in candidates.items():
            scored = [
                ScoredItem(str(i), 0.0, None, categories[i], brands[i], None, None) for i in items
            ]
            if mmr_lambda > 0:
                positions = diversify(scored, items, K, options, vectors=vectors)
            else:
                positions = list(range(K))
            chosen = [items[p] for p in positions]
            ndcgs.append(_ndcg(chosen, targets[user]))
            ilds.append(
                1.0 - intra_list_similarity([scored[p] for p in positions], chosen, vectors)
            )
            shown.update(chosen)
        rows.append(
            {
                "lambda": mmr_lambda,
                "ndcg@10": float(np.mean(ndcgs)),
                "ild@10": float(np.mean(ilds)),
                "coverage@10": len(shown) / train.shape[1],
            }
        )
    base = rows[0]["ndcg@10"]
    for row in rows:
        row["ndcg_change"] = row["ndcg@10"] / base - 1.0 if base else 0.0
    return rows


def ml100k() -> list[dict[str, float]]:
    """EASE on RecBole's ml-100k split; genre vectors as the similarity."""
    folder = DATA / "ml-100k"
    with gzip.open(folder / "recbole_split_seed2020.csv.gz") as handle:
        split = pl.read_csv(handle.read())
    items = pl.read_csv(
        folder / "ml-100k.item", separator="\t", quote_char=None, infer_schema=False
    )
    item_ids = [str(v) for v in items["item_id:token"].to_list()]
    index = {raw: i for i, raw in enumerate(item_ids)}
    genres = [str(v).split() for v in items["class:token_seq"].to_list()]
    names = sorted({g for row in genres for g in row})
    vectors = np.zeros((len(item_ids), len(names)), dtype=np.float32)
    for i, row in enumerate(genres):
        for g in row:
            vectors[i, names.index(g)] = 1.0
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    users = {raw: u for u, raw in enumerate(sorted({str(v) for v in split["user"].to_list()}))}
    user_col = np.array([users[str(v)] for v in split["user"].to_list()])
    item_col = np.array([index[str(v)] for v in split["item"].to_list()])
    sets = np.array(split["set"].to_list())
    shape = (len(users), len(item_ids))

    def matrix(mask: np.ndarray) -> sp.csr_matrix:
        ones = np.ones(int(mask.sum()), dtype=np.float32)
        return sp.csr_matrix((ones, (user_col[mask], item_col[mask])), shape=shape)

    train = matrix(sets == "train")
    seen = matrix(sets != "test")
    targets: dict[int, set[int]] = {}
    for u, i in zip(user_col[sets == "test"], item_col[sets == "test"], strict=True):
        targets.setdefault(int(u), set()).add(int(i))
    first_genre: list[str | None] = [row[0] if row else None for row in genres]
    return _evaluate(train, seen, targets, first_genre, [None] * len(item_ids), vectors)


def shop(users: int, items: int, events: int) -> list[dict[str, float]]:
    """EASE on the generated shop (80/20 per user); content similarity."""
    from shelfwise.sample.generator import generate_shop

    with tempfile.TemporaryDirectory() as folder:
        summary = generate_shop(Path(folder), users=users, items=items, events=events, seed=7)
        catalog = pl.read_parquet(summary.catalog_path)
        log = pl.read_parquet(summary.events_path)
    index = {str(raw): i for i, raw in enumerate(catalog["raw_item_id"].to_list())}
    user_ids = sorted({str(v) for v in log["raw_user_id"].to_list()})
    user_index = {raw: u for u, raw in enumerate(user_ids)}
    pairs = (
        log.select(["raw_user_id", "raw_item_id"]).unique(maintain_order=True).to_numpy().tolist()
    )
    generator = np.random.default_rng(7)
    test = generator.random(len(pairs)) < 0.2
    user_col = np.array([user_index[str(u)] for u, _ in pairs])
    item_col = np.array([index[str(i)] for _, i in pairs])
    shape = (len(user_ids), len(index))
    train = sp.csr_matrix(
        (np.ones(int((~test).sum()), np.float32), (user_col[~test], item_col[~test])), shape=shape
    )
    targets: dict[int, set[int]] = {}
    for u, i in zip(user_col[test], item_col[test], strict=True):
        if train[u].nnz:
            targets.setdefault(int(u), set()).add(int(i))
    return _evaluate(
        train,
        train,
        targets,
        [None if v is None else str(v) for v in catalog["category"].to_list()],
        [None if v is None else str(v) for v in catalog["brand"].to_list()],
        None,
    )


def mmr_cost_us() -> float:
    """Median microseconds of one MMR re-rank of 50 candidates to 10 (content similarity)."""
    generator = np.random.default_rng(1)
    items = [
        ScoredItem(
            str(i), 0.0, None, f"c{generator.integers(8)}", f"b{generator.integers(20)}", None, None
        )
        for i in range(DEPTH)
    ]
    options = DiversityOptions(mmr_lambda=0.3)
    times = []
    for _ in range(500):
        started = time.perf_counter()
        diversify(items, list(range(DEPTH)), K, options)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def steer_cost_us() -> dict[str, float]:
    """Median microseconds of `steer` on 30 ranked items cut to 10: without rules, and
    with 10 rules (2 pins, 3 boosts, 3 buries, 2 hides) all matching the request."""
    from shelfwise.config.rules import Rule
    from shelfwise.runtime.catalog import Catalog
    from shelfwise.runtime.steering import SteeringPlan, steer

    n = 1000
    catalog = Catalog(
        pl.DataFrame(
            {
                "raw_item_id": [f"i{i}" for i in range(n)],
                "title": [f"item {i}" for i in range(n)],
                "category": [f"c{i % 8}" for i in range(n)],
                "brand": [f"b{i % 20}" for i in range(n)],
                "price": [float(i % 100) for i in range(n)],
                "in_stock": [True] * n,
            }
        )
    )
    ranked = [catalog.item(i * 7, 1.0 / (i + 1)) for i in range(30)]
    rules = [
        Rule(id="pin-1", action="pin", items=["i500"]),
        Rule(id="pin-2", action="pin", items=["i7", "i14"], position=3),
        *(Rule(id=f"boost-{i}", action="boost", brand=[f"b{i}"], weight=0.3) for i in range(3)),
        *(Rule(id=f"bury-{i}", action="bury", category=[f"c{i}"], weight=0.3) for i in range(3)),
        Rule(id="hide-1", action="hide", price_min=90.0),
        Rule(id="hide-2", action="hide", items=["i21"]),
    ]
    found = {}
    for name, plan in (("no rules", SteeringPlan()), ("10 rules", SteeringPlan(rules))):
        times = []
        for _ in range(500):
            started = time.perf_counter()
            steer(catalog, ranked, K, plan)
            times.append(time.perf_counter() - started)
        found[name] = float(np.median(times) * 1e6)
    return found


def main() -> None:
    """Run both data sets and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "ml-100k": ml100k(),
        "generated shop": shop(args.users, args.items, args.events),
        "mmr_rerank_us": mmr_cost_us(),
        "steer_us": steer_cost_us(),
        "machine": platform.platform(),
        "seconds": time.perf_counter() - started,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| data | λ | NDCG@10 | ΔNDCG | ILD@10 | coverage@10 |")
    print("|---|---|---|---|---|---|")
    for name in ("ml-100k", "generated shop"):
        for row in results[name]:
            print(
                f"| {name} | {row['lambda']:.1f} | {row['ndcg@10']:.4f} | "
                f"{row['ndcg_change']:+.1%} | {row['ild@10']:.3f} | {row['coverage@10']:.3f} |"
            )
    print(f"\nMMR re-rank 50 -> 10: {results['mmr_rerank_us']:.0f} us (median)")
    for name, value in results["steer_us"].items():
        print(f"steer 30 -> 10, {name}: {value:.0f} us (median)")
    print(f"total {results['seconds']:.1f} s")


if __name__ == "__main__":
    main()
