"""Audiences for a product (issue 15): who buys each held-out product, ranked among all users.

Protocol. Each dataset is cut into train and test:

- ml-100k (real time): a global cutoff at the 90th percentile of event time; train is
  every event before it; each product's test audience is its first `--buyers` users
  after the cutoff (users unseen before the cutoff cannot be ranked and are dropped,
  counted);
- amazon-beauty (no timestamps, only each user's order): leave-last-out; each
  product's test audience is the users whose last item it is.

A product is warm when it has train events. To have enough cold products (a launch:
no events at all), `--cold-share` of the test products, drawn with a seed, also lose
every train event ("simulated launches"); ml-100k's naturally cold products (first
event after the cutoff) are counted with them. For each test product every train user
is ranked (its train owners left out), and recall@K / NDCG@K of its test audience are
averaged over products, separately for warm and cold ones.

Rankers:
- `active-users`: users by train activity (popularity of the user), the same list for
  every product;
- `recent-users`: the audience model's recency prior alone (users by their last event,
  ties by lower index), the same list for every product: what recency alone is worth
  (ml-100k only; Beauty has no time, so it equals ranking by index there);
- `item-knn`: users who interacted with the product's item-kNN neighbours (cosine, 50
  neighbours; `Σ_i H[u,i]·sim(j,i)`), ties (and cold products, which have no
  neighbours) by activity;
- `audience`: `shelfwise.runtime.audience.AudienceModel` over the same item-kNN plus
  the products' text (ml-100k: title and genres; Beauty: its anonymised attribute ids
  as tokens) against users' profiles, times the users' recency (ml-100k).

Run: .venv/bin/python benchmarks/audience.py [--datasets ml-100k amazon-beauty]
Writes benchmarks/results/audience.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.package.audience import item_vectors, user_profiles
from shelfwise.retrieval import ItemKNNRecommender
from shelfwise.runtime.audience import RECENCY_HALF_LIFE_DAYS, AudienceModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "audience.json"
Split = tuple[
    sp.csr_matrix, dict[int, np.ndarray], set[int], pl.DataFrame, dict[str, int], np.ndarray | None
]


def _matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
    matrix.data[:] = 1.0  # repeats count once
    return matrix


def _simulate_launches(
    train: sp.csr_matrix, targets: dict[int, np.ndarray], share: float, seed: int
) -> tuple[sp.csr_matrix, set[int]]:
    """Hide every train event of `share` of the warm test products (seeded)."""
    warm = [item for item in targets if train[:, item].nnz]
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(warm, size=int(len(warm) * share), replace=False).tolist())
    mask = np.ones(train.shape[1], dtype=np.float32)
    mask[list(chosen)] = 0.0
    hidden = sp.csr_matrix(train @ sp.diags(mask))
    hidden.eliminate_zeros()
    return hidden, chosen


def ml100k(buyers: int, cold_share: float, seed: int) -> Split:
    inter = pl.read_csv(DATA / "ml-100k" / "ml-100k.inter", separator="\t")
    inter.columns = ["user", "item", "rating", "ts"]
    items = pl.read_csv(
        DATA / "ml-100k" / "ml-100k.item", separator="\t", quote_char=None, infer_schema=False
    )
    items.columns = ["item", "title", "year", "category"]
    items = items.with_columns(pl.col("item").cast(pl.Int64))
    item_ids = {raw: i for i, raw in enumerate(items["item"].to_list())}
    cutoff = float(inter["ts"].quantile(0.9) or 0)
    before = inter.filter(pl.col("ts") < cutoff)
    user_ids = {raw: u for u, raw in enumerate(sorted(set(before["user"].to_list())))}
    shape = (len(user_ids), len(item_ids))
    train = _matrix(
        before["user"].replace_strict(user_ids).to_numpy(),
        before["item"].replace_strict(item_ids).to_numpy(),
        shape,
    )
    after = inter.filter(pl.col("ts") >= cutoff).sort("ts")
    known = after.filter(pl.col("user").is_in(list(user_ids)))
    firsts = known.group_by("item", maintain_order=True).head(buyers)
    targets = {
        item_ids[raw]: np.asarray([user_ids[u] for u in users])
        for raw, users in firsts.group_by("item", maintain_order=True)
        .agg(pl.col("user"))
        .iter_rows()
    }
    natural_cold = {item for item in targets if train[:, item].nnz == 0}
    train, launched = _simulate_launches(train, targets, cold_share, seed)
    last = before.group_by("user").agg(pl.col("ts").max())
    last_active = np.zeros(shape[0], dtype=np.int64)
    last_active[last["user"].replace_strict(user_ids).to_numpy()] = last["ts"].to_numpy()
    texts = items.select(pl.col("title").cast(pl.String), pl.col("category").cast(pl.String))
    counts = {
        "users": shape[0],
        "items": shape[1],
        "train_events": int(train.nnz),
        "test_products": len(targets),
        "natural_cold": len(natural_cold),
        "simulated_launches": len(launched),
        "dropped_unseen_buyers": int(after.height - known.height),
    }
    return train, targets, natural_cold | launched, texts, counts, last_active


def beauty(buyers: int, cold_share: float, seed: int) -> Split:
    lines = (DATA / "amazon-beauty" / "Beauty.txt").read_text().split("\n")
    sequences = [[int(t) for t in line.split()[1:]] for line in lines if line.strip()]
    attributes = json.loads((DATA / "amazon-beauty" / "Beauty_item2attributes.json").read_text())
    n_items = max(max(s) for s in sequences)  # items are 1..n
    rows, cols, test_users, test_items = [], [], [], []
    for user, sequence in enumerate(sequences):
        for item in sequence[:-1]:
            rows.append(user)
            cols.append(item - 1)
        test_users.append(user)
        test_items.append(sequence[-1] - 1)
    train = _matrix(np.asarray(rows), np.asarray(cols), (len(sequences), n_items))
    frame = pl.DataFrame({"user": test_users, "item": test_items})
    targets = {
        item: np.asarray(users[:buyers])
        for item, users in frame.group_by("item", maintain_order=True).agg("user").iter_rows()
    }
    natural_cold = {item for item in targets if train[:, item].nnz == 0}
    train, launched = _simulate_launches(train, targets, cold_share, seed)
    texts = pl.DataFrame(
        {
            "title": [
                " ".join(f"attr{a}" for a in attributes.get(str(i + 1), [])) or None
                for i in range(n_items)
            ]
        }
    )
    counts = {
        "users": train.shape[0],
        "items": n_items,
        "train_events": int(train.nnz),
        "test_products": len(targets),
        "natural_cold": len(natural_cold),
        "simulated_launches": len(launched),
        "dropped_unseen_buyers": 0,
    }
    return train, targets, natural_cold | launched, texts, counts, None


def _metrics(ranked: np.ndarray, truth: np.ndarray, ks: list[int]) -> dict[str, float]:
    hits = np.isin(ranked, truth)
    gains = 1.0 / np.log2(np.arange(2, ranked.size + 2))
    out = {}
    for k in ks:
        out[f"recall@{k}"] = float(hits[:k].sum() / truth.size)
        ideal = gains[: min(k, truth.size)].sum()
        out[f"ndcg@{k}"] = float((gains[:k] * hits[:k]).sum() / ideal)
    return out


def evaluate(
    name: str,
    split: Split,
    *,
    ks: list[int],
    max_products: int,
    seed: int,
    weights: tuple[float, float, float] | None,
    half_life: float,
) -> dict[str, object]:
    train, targets, cold, texts, counts, last_active = split
    started = time.perf_counter()
    knn = ItemKNNRecommender(neighbours=50, num_threads=1)
    knn.fit(train)
    vectors = item_vectors(texts)
    profiles = None if vectors is None else user_profiles(train, vectors)
    activity = np.log1p(np.diff(train.indptr)).astype(np.float32)
    tie = 1e-6 * activity / max(float(activity.max()), 1.0)

    def neighbours(item: int, k: int) -> list[tuple[int, float]]:
        found, scores = knn.similar(item, k)
        return [(int(i), float(s)) for i, s in zip(found, scores, strict=True) if s > 0]

    model = AudienceModel(
        histories=train,
        user_ids=[str(u) for u in range(train.shape[0])],
        item_index={str(i): i for i in range(train.shape[1])},
        neighbours=neighbours,
        item_vectors=vectors,
        user_profiles=profiles,
        last_active=last_active,
        reference_time=0 if last_active is None else int(last_active.max()),
        half_life_days=half_life,
        **({"weights": weights} if weights else {}),
    )
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {
        "warm": [i for i in targets if i not in cold],
        "cold": [i for i in targets if i in cold],
    }
    for group, chosen in groups.items():
        if len(chosen) > max_products:
            groups[group] = sorted(rng.choice(chosen, size=max_products, replace=False).tolist())
    owners = sp.csc_matrix(train)
    top = max(ks)

    def ranked_by(scores: np.ndarray, item: int) -> np.ndarray:
        scores = scores.copy()
        scores[owners[:, item].indices] = -np.inf
        best = np.argpartition(-scores, top)[:top]
        return best[np.lexsort((best, -scores[best]))]

    def item_knn_scores(items: list[int]) -> np.ndarray:
        weights_matrix = sp.lil_matrix((train.shape[1], len(items)), dtype=np.float32)
        for column, item in enumerate(items):
            for neighbour, similarity in neighbours(item, 50):
                weights_matrix[neighbour, column] = similarity
        return np.asarray((train @ weights_matrix.tocsc()).todense()) + tie[:, None]

    rankers: dict[str, Callable[[list[int]], np.ndarray]] = {
        "active-users": lambda items: np.repeat(activity[:, None], len(items), axis=1),
        "recent-users": lambda items: np.repeat(model.prior[:, None], len(items), axis=1),
        "item-knn": item_knn_scores,
        "audience": lambda items: model.score(np.asarray(items, dtype=np.int64))[0],
    }
    results: dict[str, object] = {"counts": counts}
    for group, items in groups.items():
        table: dict[str, dict[str, float]] = {}
        for ranker, score in rankers.items():
            sums: dict[str, float] = {}
            for start in range(0, len(items), 256):
                block = items[start : start + 256]
                scores = score(block)
                for column, item in enumerate(block):
                    for metric, value in _metrics(
                        ranked_by(scores[:, column], item), targets[item], ks
                    ).items():
                        sums[metric] = sums.get(metric, 0.0) + value
            table[ranker] = {m: round(v / max(len(items), 1), 4) for m, v in sums.items()}
        results[group] = {"products": len(items), "metrics": table}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "amazon-beauty"])
    parser.add_argument("--k", nargs="+", type=int, default=[10, 50])
    parser.add_argument("--buyers", type=int, default=20, help="test audience per product")
    parser.add_argument("--cold-share", type=float, default=0.2)
    parser.add_argument("--max-products", type=int, default=1000, help="per group, sampled")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--weights", type=float, nargs=3, default=None, help="warm content, cold content, prior"
    )
    parser.add_argument("--half-life", type=float, default=RECENCY_HALF_LIFE_DAYS)
    args = parser.parse_args()
    loaders = {"ml-100k": ml100k, "amazon-beauty": beauty}
    report = {}
    for name in args.datasets:
        split = loaders[name](args.buyers, args.cold_share, args.seed)
        report[name] = evaluate(
            name,
            split,
            ks=args.k,
            max_products=args.max_products,
            seed=args.seed,
            weights=tuple(args.weights) if args.weights else None,
            half_life=args.half_life,
        )
        print(name, json.dumps(report[name], indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"args": vars(args), "results": report}, indent=1) + "\n")


if __name__ == "__main__":
    main()
