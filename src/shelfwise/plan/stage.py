"""The plan stage: measure the data and the machine, choose, write `plan.json`.

Stage inputs: `ingest`, `validate` (their measured times and memory go into the
table), `features` (the data's shape). Output: `plan.json` (see `record.Plan`). The
pipeline runs every later stage that trains or measures models on the run's config
with the plan's settings applied (`record.apply_plan`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Final

from shelfwise._internal.artifacts import read_manifest
from shelfwise._internal.stage import StageContext, StageResult
from shelfwise.config import ShelfwiseConfig
from shelfwise.errors import ManifestError
from shelfwise.features.sessions import SESSIONS_JSON
from shelfwise.plan.budget import fit_budget
from shelfwise.plan.choose import FAST_ENCODER, is_user_setting, make_plan
from shelfwise.plan.costs import encode_seconds, scoring_estimate
from shelfwise.plan.probe import (
    cached_shares,
    encoder_tokens_per_second,
    load_encoder,
    sample_texts,
)
from shelfwise.plan.record import Choice, Plan, apply_plan
from shelfwise.plan.shape import DataShape, Resources, detect_resources, measure_shape
from shelfwise.plan.split_choice import split_row

MEASURED_STAGES: Final = ("ingest", "validate", "features")
# Stage costs without a model of their own: seconds on the generated shops of 1M and
# 10M events (benchmarks/scale.py), per 1,000 scored users or labelled queries.
RANKING_SECONDS_PER_1K_USERS: Final = 1.5  # LightGBM on the candidates, per split
# The search stage scores every label group against the whole catalog (BM25 and the
# fused candidates, in each cross-validation fold): 300 groups took 42 s at 200k items
# (10M shop) and 105 s at 600k (30M shop), so a group costs a fixed part plus a part
# per catalog item.
SEARCH_SECONDS_PER_1K_QUERIES: Final = 60.0
SEARCH_SECONDS_PER_1K_QUERIES_PER_1K_ITEMS: Final = 0.5
# The bundle: copying the models, plus the audience files' LSA vectors of the catalog
# text (tokenizing it, jieba for Chinese: the cost of a BM25 index): 52 s for the 10M
# shop's 29.6 MB of text, 161 s for the 30M shop's 67 MB.
PACKAGE_SECONDS: Final = 5.0
PACKAGE_SECONDS_PER_TEXT_BYTE: Final = 2.4e-6
# The served recommender is usually a blend of two or three families: its cost per user
# is taken as the two costliest enabled families' together.
BLEND_SIZE: Final = 2
# Scoring users one at a time (a served request; compression's latency, the gate's
# re-scoring) costs about twice as much per user as in blocks (GF-CF at 200k items:
# 91 ms alone, 45 ms per user in blocks of 125).
ONE_USER_FACTOR: Final = 2.0
# Distilling the click model: the ranking stage's rows rebuilt (the served
# recommender's candidates for its valid users, and the feature tables over the train
# events: 16 s for the 30M shop's 24M), then three LightGBM students on them.
DISTILL_SECONDS_PER_1K_USERS: Final = 1.5
TABLE_SECONDS_PER_TRAIN_EVENT: Final = 7e-7
FLOAT_VARIANTS: Final = ("float16", "int8", "int8_column")


def run(ctx: StageContext) -> StageResult:
    """Measure the shape, choose the plan and write it."""
    config = ctx.config
    shape = measure_shape(ctx.inputs["features"], config)
    resources = detect_resources(config)
    items = ctx.inputs["features"] / "items.parquet"
    rates, cached = dense_probe(config, shape, resources, items)
    plan = make_plan(config, shape, resources, rates, cached)
    plan = fit_budget(config, plan, lambda p: stage_rows(config, p, ctx.inputs))
    plan = replace(plan, encoder_rates=rates, stages=_with_split_row(config, plan, ctx.inputs))
    plan.save(ctx.out)
    families = [c for c in plan.parts if c.kind == "family" and c.enabled]
    return StageResult(
        row_counts={
            "families": len(families),
            "left_out": len(plan.left_out()),
            "settings": len(plan.settings),
        },
        extra={"left_out": plan.left_out(), "settings": plan.settings},
        summary=summary(plan),
    )


def dense_probe(
    config: ShelfwiseConfig, shape: DataShape, resources: Resources, items: Path
) -> tuple[dict[str, float], dict[str, float]]:
    """Encoders' tokens/s on the catalog's texts and the shares already cached.

    Measured only when the constant-based estimate of the whole encoding is over a
    quarter of `plan.max_encode_seconds` (small catalogs encode fast whatever the
    rate: no need to load a model here); the fast encoder too when the configured one
    looks too slow and the plan may switch to it.

    Returns:
        (tokens per second by encoder spec, {"text"/"title": share cached} of the
        configured encoder).
    """
    dense, limit = config.models.dense, config.plan.max_encode_seconds
    tokens = shape.text_tokens + (int(shape.title_bytes / 4) if dense.title_vectors else 0)
    wanted = dense.enabled is not False and shape.text_items > 0
    wanted = wanted and (
        shape.labelled_queries > 0
        or shape.search_events > 0
        or "dense" in config.plan.keep
        or dense.enabled is True
    )
    if not wanted or encode_seconds(dense.encoder, tokens, resources.cores) <= limit / 4:
        return {}, {}
    texts = sample_texts(items, config)
    rates: dict[str, float] = {}
    cached: dict[str, float] = {}
    encoder = load_encoder(dense.encoder)
    measured = encoder_tokens_per_second(encoder, texts) if encoder else None
    if encoder is not None:
        cached = cached_shares(config, encoder, items)
    if measured:
        rates[dense.encoder] = round(measured, 1)
    left = int(shape.text_tokens * (1.0 - cached.get("text", 0.0)))
    slow = measured is None or left / measured > limit
    may_switch = dense.encoder != FAST_ENCODER and not is_user_setting(
        config, "models.dense.encoder"
    )
    # the fast encoder is loaded only when even its optimistic constant fits the limit
    if slow and may_switch and encode_seconds(FAST_ENCODER, left, resources.cores) <= limit:
        fast = load_encoder(FAST_ENCODER)
        fast_rate = encoder_tokens_per_second(fast, texts) if fast else None
        if fast_rate:
            rates[FAST_ENCODER] = round(fast_rate, 1)
    return rates, cached


def summary(plan: Plan) -> str:
    """The console line: what runs, the estimate, then one line per part left out."""
    families = [c.name for c in plan.parts if c.kind == "family" and c.enabled]
    dense = plan.part("dense")
    estimate = sum(c.seconds for c in plan.stages if not c.measured)
    head = (
        f"{len(families)} families ({', '.join(families)}); dense search "
        f"{'on' if dense and dense.enabled else 'off'}; ≈{estimate / 60:.0f} min to go"
    )
    if not plan.enabled:
        return "plan.enabled: false; the config runs as written"
    if len(plan.budget) > 1:  # settings the time budget changed, then the total
        head += "".join(f"\n   budget: {line}" for line in plan.budget)
    notes = [
        f"\n   left out {c.name}: {c.reason.removeprefix(f'{c.name}: ')}"
        for c in plan.parts
        if not c.enabled and not c.reason.startswith("off")
    ]
    return head + "".join(notes)


def stage_rows(config: ShelfwiseConfig, plan: Plan, inputs: dict[str, Path]) -> list[Choice]:
    """One row per stage: measured for those done, estimated from the plan for the rest."""
    planned = apply_plan(config, plan)
    rows = [_measured(name, inputs[name]) for name in MEASURED_STAGES if name in inputs]
    rows.append(Choice("plan", "stage", True, "this step", measured=True))
    shape = plan.shape
    families = [c for c in plan.parts if c.kind == "family" and c.enabled]
    tune = planned.tune
    tuned = bool(plan.tune_trial_seconds) and tune.enabled and shape.valid_users > 0
    rows.append(
        Choice(
            "tune",
            "stage",
            tuned,
            f"budget {tune.budget_seconds:.0f} s over {len(plan.tune_trial_seconds)} families "
            f"(every baseline ≈{sum(plan.tune_trial_seconds.values()):.0f} s first), "
            f"{min(tune.max_eval_users or shape.valid_users, shape.valid_users):,} valid users"
            if tuned
            else "nothing to tune (tune off, no tunable family or no validation users)",
            seconds=tune.budget_seconds if tuned else 0.0,
        )
    )
    refits = 2 if planned.evaluate.refit_on_train_valid and shape.valid_users else 1
    search_parts = [c for c in plan.parts if c.kind == "search" and c.enabled]
    # a tuned family's train fit is the tune stage's baseline fit (reused when tuning keeps
    # the configured parameters, as it mostly does on large data): only its refit is new
    tuned_fits = sum(c.seconds for c in families if c.name in plan.tune_trial_seconds)
    fit_seconds = (
        sum(c.seconds for c in families) * refits
        - (tuned_fits if tuned else 0.0)
        + sum(c.seconds for c in search_parts)
    )
    rows.append(
        Choice(
            "retrieval",
            "stage",
            True,
            f"{len(families)} families"
            + (" fitted on train, then refitted on train + valid" if refits == 2 else "")
            + (f"; {', '.join(c.name for c in search_parts)} search" if search_parts else ""),
            seconds=round(fit_seconds, 1),
            memory_mb=max((c.memory_mb for c in families + search_parts), default=0.0),
        )
    )
    users = planned.evaluate.max_eval_users
    valid = min(users or shape.valid_users, shape.valid_users)
    test = min(users or shape.test_users, shape.test_users)
    scoring = [
        scoring_estimate(
            c.name, dict(planned.models.families()[c.name].params), shape, valid + test
        )
        for c in families
    ]
    blend = 3 * max((s.seconds for s in scoring), default=0.0) * valid / max(valid + test, 1)
    rows.append(
        Choice(
            "evaluate",
            "stage",
            True,
            f"{len(families)} families on {valid:,} valid and {test:,} test users"
            + (" (sampled)" if users is not None else ""),
            seconds=round(sum(s.seconds for s in scoring) + blend, 1),
            memory_mb=round(max((s.memory_bytes for s in scoring), default=0) / 2**20, 1),
        )
    )
    ranking_users = min(planned.ranking.max_users or valid, shape.valid_users)
    ranked = planned.ranking.enabled and ranking_users > 0
    # candidates of the served recommender for the users of both splits, then LightGBM
    per_user = served_seconds_per_user(planned, plan)  # ranking, compress and the gate
    candidates = 2 * ranking_users * per_user
    rows.append(
        Choice(
            "ranking",
            "stage",
            ranked,
            f"click model on {ranking_users:,} users per split"
            if ranked
            else "off or no valid users",
            seconds=round(
                candidates
                + shape.train_events * TABLE_SECONDS_PER_TRAIN_EVENT
                + 2 * ranking_users / 1000 * RANKING_SECONDS_PER_1K_USERS,
                1,
            )
            if ranked
            else 0.0,
        )
    )
    queries = min(shape.labelled_queries or shape.search_events, planned.search.max_queries)
    rows.append(
        Choice(
            "search",
            "stage",
            bool(search_parts),
            f"{queries:,} query groups, {', '.join(c.name for c in search_parts)}"
            if search_parts
            else "no search index",
            seconds=round(
                queries
                / 1000
                * (
                    SEARCH_SECONDS_PER_1K_QUERIES
                    + SEARCH_SECONDS_PER_1K_QUERIES_PER_1K_ITEMS * shape.n_items / 1000
                ),
                1,
            ),
        )
    )
    rows.append(
        _compress_row(planned, per_user, valid, ranking_users if ranked else 0, shape.train_events)
    )
    rows.append(
        Choice(
            "package",
            "stage",
            True,
            "the bundle",
            seconds=round(PACKAGE_SECONDS + PACKAGE_SECONDS_PER_TEXT_BYTE * shape.text_bytes, 1),
        )
    )
    gate_users = min(planned.gate.max_users or shape.test_users, shape.test_users)
    rows.append(
        Choice(
            "publish",
            "stage",
            True,
            f"the gate re-scores the bundle (and the champion's) on {gate_users:,} test users"
            + _session_cases(planned, inputs),
            # the challenger, and a champion as costly (the first run has none)
            seconds=round(2 * gate_users * per_user * ONE_USER_FACTOR, 1),
        )
    )
    return rows


def _session_cases(planned: ShelfwiseConfig, inputs: dict[str, Path]) -> str:
    """The publish row's words on the held-out sessions the gate re-scores on a session
    split (issue 15); empty otherwise."""
    counts = inputs["features"] / SESSIONS_JSON if "features" in inputs else None
    if counts is None or not counts.is_file():
        return ""
    held_out = int(json.loads(counts.read_text(encoding="utf-8"))["sessions"].get("test", 0))
    if planned.gate.max_users is not None:
        held_out = min(held_out, planned.gate.max_users)
    return f" and up to {held_out:,} held-out sessions (the served session path)"


def served_seconds_per_user(planned: ShelfwiseConfig, plan: Plan) -> float:
    """Estimated seconds to score one user with the served recommender (in blocks)."""
    shape = plan.shape
    costs = sorted(
        (
            scoring_estimate(c.name, dict(planned.models.families()[c.name].params), shape, 1)
            for c in plan.parts
            if c.kind == "family" and c.enabled
        ),
        key=lambda estimate: estimate.seconds,
        reverse=True,
    )
    return sum(estimate.seconds for estimate in costs[:BLEND_SIZE])


def compress_variant_count(planned: ShelfwiseConfig) -> int:
    """How many variants of the served recommender the compress stage builds and measures."""
    settings = planned.compress
    count = sum(name in settings.variants for name in FLOAT_VARIANTS)
    if "svd_int8" in settings.variants:
        count += len(settings.svd_fractions)
    if "prune" in settings.variants and settings.inactive_days is not None:
        count += 1
    return count


def _compress_row(
    planned: ShelfwiseConfig,
    per_user: float,
    valid_users: int,
    ranking_users: int,
    train_events: int,
) -> Choice:
    settings = planned.compress
    if not settings.enabled:
        return Choice("compress", "stage", False, "off (compress.enabled: false)")
    variants = compress_variant_count(planned)
    users = min((n for n in (valid_users, settings.max_eval_users) if n), default=0)
    latency = settings.latency_users
    # each variant and the original: quality on `users` in blocks, then latency one user
    # at a time, timed in turn with the original
    seconds = (variants + 1) * users * per_user + (
        2 * variants + 1
    ) * latency * per_user * ONE_USER_FACTOR
    if "distill" in settings.variants and ranking_users:
        seconds += (
            ranking_users * per_user
            + train_events * TABLE_SECONDS_PER_TRAIN_EVENT
            + ranking_users / 1000 * DISTILL_SECONDS_PER_1K_USERS
        )
    return Choice(
        "compress",
        "stage",
        True,
        f"{variants} variants of the served recommender on {users:,} valid users, latency "
        f"on {latency:,}",
        seconds=round(seconds, 1),
    )


def _with_split_row(config: ShelfwiseConfig, plan: Plan, inputs: dict[str, Path]) -> list[Choice]:
    """The stage rows with the split's (`split_choice`: `auto` resolved, and why) after
    the features row, where the split was made."""
    if "validate" not in inputs:
        return plan.stages
    row = split_row(config, inputs["validate"])
    names = [choice.name for choice in plan.stages]
    at = names.index("features") + 1 if "features" in names else len(names)
    return [*plan.stages[:at], row, *plan.stages[at:]]


def _measured(name: str, folder: Path) -> Choice:
    try:
        manifest = read_manifest(folder)
    except ManifestError:
        return Choice(name, "stage", True, "done")
    return Choice(
        name,
        "stage",
        True,
        str(manifest.extra.get("summary", "done")),
        seconds=float(manifest.timings_s.get("total", 0.0)),
        memory_mb=float(manifest.peak_memory_mb or 0.0),
        measured=True,
    )
