"""Fake traffic (issue 15): the detector's precision and recall on injected bots, and
what filtering them does to recommendations for real shoppers.

1. `generate_shop(..., bots=SHARE)` writes a shop with labelled scrapers, click farms
   and fake-order rings (`bots.parquet`, the truth).
2. `validate_frames` with the default `data.fake_traffic` thresholds quarantines
   suspected bots and fake orders; precision and recall are measured by user and by
   event against the truth (duplicate events quarantined for their own reason count
   as neither).
3. On a real log presumed human (../shared/data/taobao-userbehavior: Taobao's pv,
   cart, fav and buy events of 815 users, unix seconds), the share of users and
   events the same defaults flag: an upper bound on the false-positive rate there.
4. Quality on clean users: a time split (the last 10% of time is test); popularity,
   item-kNN and EASE are fitted on the train events with and without the quarantined
   users (event weights as `models.event_weights`), and scored on the real shoppers'
   test items they had not seen (recall@10, NDCG@10).

Run: .venv/bin/python benchmarks/bots.py [--share 0.05 --users 3000 --events 100000]
Writes benchmarks/results/bots.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shelfwise.config import ModelsConfig, ShelfwiseConfig
from shelfwise.contracts import EVENT_TYPE, RAW_ITEM_ID, RAW_USER_ID, TIMESTAMP
from shelfwise.retrieval import ItemKNNRecommender, PopularityRecommender
from shelfwise.retrieval.base import recommend_top_k
from shelfwise.retrieval.ease import EASERecommender
from shelfwise.sample import generate_shop
from shelfwise.validate import validate_frames

OUT = Path(__file__).resolve().parent / "results" / "bots.json"
FAKE = ("suspected-bot", "suspected-fake-order")


def _shares(found: set[str], truth: set[str]) -> dict[str, float]:
    hits = len(found & truth)
    return {
        "precision": round(hits / len(found), 4) if found else 1.0,
        "recall": round(hits / len(truth), 4) if truth else 1.0,
        "flagged": len(found),
        "true": len(truth),
    }


def detection(
    events: pl.DataFrame, catalog: pl.DataFrame, truth: pl.DataFrame
) -> tuple[dict[str, object], set[str]]:
    started = time.perf_counter()
    result = validate_frames(ShelfwiseConfig(), catalog=catalog, events=events, now=2e9)
    seconds = time.perf_counter() - started
    fake = result.quarantine.filter(pl.col("reason").is_in(FAKE))
    rows = fake["row_number"].to_list()
    flagged_users = set(
        events.with_row_index("row", offset=1)
        .filter(pl.col("row").is_in(rows))[RAW_USER_ID]
        .to_list()
    )
    bots = set(truth[RAW_USER_ID].to_list())
    # by event: row numbers of fake rows vs rows of bot users (not otherwise rejected)
    rejected_other = set(
        result.quarantine.filter(~pl.col("reason").is_in(FAKE))["row_number"].to_list()
    )
    numbered = events.with_row_index("row", offset=1)
    bot_rows = (
        set(numbered.filter(pl.col(RAW_USER_ID).is_in(list(bots)))["row"].to_list())
        - rejected_other
    )
    by_kind = {
        kind: round(len(set(group[RAW_USER_ID].to_list()) & flagged_users) / group.height, 4)
        for (kind,), group in truth.group_by("bot_kind")
    }
    report = {
        "by_user": _shares(flagged_users, bots),
        "by_event": _shares(set(rows), bot_rows),
        "recall_by_kind": dict(sorted(by_kind.items())),
        "fake_traffic": result.report["fake_traffic"],
        "validate_seconds": round(seconds, 2),
    }
    return report, flagged_users


def quality(
    events: pl.DataFrame, humans: set[str], dropped: set[str], seed: int
) -> dict[str, dict[str, float]]:
    weights = {k.value: v for k, v in ModelsConfig().event_weights.items()}
    cutoff = float(events[TIMESTAMP].quantile(0.9) or 0)
    items = {raw: i for i, raw in enumerate(sorted(set(events[RAW_ITEM_ID].to_list())))}

    def fit_matrix(frame: pl.DataFrame, users: dict[str, int]) -> sp.csr_matrix:
        frame = frame.filter(pl.col(RAW_USER_ID).is_in(list(users)))
        rows = frame[RAW_USER_ID].replace_strict(users).to_numpy()
        cols = frame[RAW_ITEM_ID].replace_strict(items).to_numpy()
        values = frame[EVENT_TYPE].replace_strict(weights, return_dtype=pl.Float32).to_numpy()
        return sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)))

    train = events.filter(pl.col(TIMESTAMP) < cutoff)
    test = events.filter((pl.col(TIMESTAMP) >= cutoff) & pl.col(RAW_USER_ID).is_in(list(humans)))
    results: dict[str, dict[str, float]] = {}
    for setting, kept in (
        ("unfiltered", train),
        ("filtered", train.filter(~pl.col(RAW_USER_ID).is_in(list(dropped)))),
    ):
        users = {raw: u for u, raw in enumerate(sorted(set(kept[RAW_USER_ID].to_list())))}
        matrix = fit_matrix(kept, users)
        evaluated = sorted(humans & set(users) & set(test[RAW_USER_ID].to_list()))
        rows = np.asarray([users[u] for u in evaluated])
        seen = matrix[rows]
        truth_frame = test.filter(pl.col(RAW_USER_ID).is_in(evaluated))
        truth: dict[str, set[int]] = {u: set() for u in evaluated}
        for user, item in truth_frame.select(RAW_USER_ID, RAW_ITEM_ID).iter_rows():
            truth[user].add(items[item])
        for name, model in (
            ("popularity", PopularityRecommender()),
            ("item_knn", ItemKNNRecommender(neighbours=100, num_threads=1)),
            ("ease", EASERecommender()),
        ):
            model.fit(matrix)
            top, _ = recommend_top_k(model, seen, 10, seen=seen)
            recall, ndcg, counted = 0.0, 0.0, 0
            gains = 1.0 / np.log2(np.arange(2, 12))
            for position, user in enumerate(evaluated):
                wanted = truth[user] - set(seen[position].indices.tolist())
                if not wanted:
                    continue
                hits = np.asarray([i in wanted for i in top[position].tolist()])
                recall += hits.sum() / min(len(wanted), 10)
                ndcg += float((gains * hits).sum() / gains[: min(len(wanted), 10)].sum())
                counted += 1
            results.setdefault(name, {})[f"{setting}_recall@10"] = round(recall / counted, 4)
            results[name][f"{setting}_ndcg@10"] = round(ndcg / counted, 4)
            results[name]["users"] = counted
    return results


def taobao() -> dict[str, object]:
    """What the default thresholds flag on a real, presumably human, event log."""
    path = (
        Path(__file__).resolve().parents[2] / "shared/data/taobao-userbehavior/UserBehavior.csv.gz"
    )
    if not path.is_file():
        return {"skipped": f"{path} not found"}
    frame = pl.read_csv(
        path,
        has_header=False,
        new_columns=[RAW_USER_ID, RAW_ITEM_ID, "category", EVENT_TYPE, TIMESTAMP],
        schema_overrides={RAW_USER_ID: pl.String, RAW_ITEM_ID: pl.String},
    ).with_columns(
        pl.col(EVENT_TYPE).replace_strict(
            {"pv": "view", "cart": "cart", "fav": "cart", "buy": "purchase"}
        )
    )
    result = validate_frames(ShelfwiseConfig(), events=frame.drop("category"), now=2e9)
    fake = result.report["fake_traffic"]
    users = frame[RAW_USER_ID].n_unique()
    flagged = sum(fake.get("users_by_pattern", {}).values())
    return {
        "users": users,
        "events": frame.height,
        "users_flagged": flagged,
        "users_flagged_share": round(flagged / users, 4),
        "fake_traffic": fake,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        shop = generate_shop(
            Path(folder),
            users=args.users,
            items=args.items,
            events=args.events,
            seed=args.seed,
            bots=args.share,
        )
        assert shop.bots_path is not None
        events = pl.read_parquet(shop.events_path)
        catalog = pl.read_parquet(shop.catalog_path)
        truth = pl.read_parquet(shop.bots_path)
    report, flagged = detection(events, catalog, truth)
    humans = set(events[RAW_USER_ID].to_list()) - set(truth[RAW_USER_ID].to_list())
    report["quality_on_clean_users"] = quality(events, humans, flagged, args.seed)
    report["taobao_real_log"] = taobao()
    report["shop"] = {"events": events.height, "bot_users": truth.height, **vars(args)}
    print(json.dumps(report, indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
