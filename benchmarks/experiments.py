"""The canary's statistics by simulation: error rate under peeking, power, sample sizes.

Simulates two-arm experiments on clicks per served list (Bernoulli, baseline CTR 5%),
looked at `--looks` times each (the canary CronJob looks every 30 minutes), and counts
how often each method declares a difference:

- the mixture SPRT `canary judge` uses (`shelfwise.experiments.sequential`);
- a fixed-horizon two-sided z-test applied at every look (what "peeking" does);
- with a true lift of `--mde`, the mSPRT's power at its planned sample size.

`--canaries N` adds `canary judge` itself end to end (issue 18): N simulated canaries
per case (no lift, a true +20% CTR lift), CTR and conversion per list, the judge
looking `--canary-looks` times up to the sequential plan for +20% and acting on its
first verdict; it reports how often it promotes, rolls back or still waits, and at
which look it promoted (tests/unit/loop/test_canary_simulation.py runs 1,000).

`--overdispersed N` judges N simulated canaries per case whose clicks per list are
over-dispersed (a list is clicked with probability 10%, a clicked list gets 1 +
Geometric(0.5) clicks: mean 0.2 per list, variance 0.56 against the Bernoulli 0.16),
once on the share of lists clicked (`shelfwise_serve_attributed_lists_total`, what
current servers export) and once on clicks per list (older servers): how often each
promotes an identical challenger, and a +20% lift in lists clicked
(tests/unit/loop/test_canary_overdispersion.py runs 1,000).

`--interleaving N` compares the server's two modes on the same simulated users (N
experiments each): ranker B's items are relevant 20% more often than A's; users differ a
lot in how much they click (activity ~ Gamma(0.5), mean 1); clicks follow a position
bias 1/log2(rank + 1). A/B splits users and compares clicks per list
(`experiments.decide_ab`, mde 20%, with the observed per-list variance the server keeps,
and with the Bernoulli variance `canary judge` still uses against servers without
`shelfwise_serve_attributed_lists_total`); interleaving shows every user a team-draft
merge of both lists and tests the share of requests won
(`decide_interleaving`). All look every 500 users; the table gives how often each
reaches a significant verdict by the horizon (with no difference: its false-positive
rate under 40 looks) and the median number of users it took.

Usage:
    .venv/bin/python benchmarks/experiments.py [--experiments 10000] [--looks 100]
        [--canaries 4000] [--canary-looks 20] [--overdispersed 4000] [--interleaving 200]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats

from shelfwise.config import CanaryConfig
from shelfwise.experiments.sequential import (
    fixed_sample_size,
    log_likelihood_ratio,
    mixing_variance,
    sequential_sample_size,
)
from shelfwise.experiments.verdict import ArmCounts, decide_ab, decide_interleaving
from shelfwise.loop.canary import Kpis, judge

CANARY_CTR, CANARY_CONVERSION = 0.05, 0.01


def rejections(
    rate_b: float, baseline: float, lists: int, looks: int, count: int, mde: float, alpha: float
) -> tuple[float, float]:
    """(mSPRT rejection rate, peeking z-test rejection rate) over `count` experiments."""
    rng = np.random.default_rng(0)
    step = lists // looks
    a = rng.binomial(step, baseline, size=(count, looks)).cumsum(axis=1)
    b = rng.binomial(step, rate_b, size=(count, looks)).cumsum(axis=1)
    n = step * np.arange(1, looks + 1)
    pa, pb = a / n, b / n
    sigma2 = pa * (1 - pa) + pb * (1 - pb)
    msprt = log_likelihood_ratio(pb - pa, n, sigma2, mixing_variance(mde)) >= math.log(1 / alpha)
    pooled = (a + b) / (2 * n)
    z = (pb - pa) / np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / n, 1e-12))
    peeking = np.abs(z) >= stats.norm.ppf(1 - alpha / 2)
    return float(msprt.any(axis=1).mean()), float(peeking.any(axis=1).mean())


def canary_decisions(
    ctr_b: float, canaries: int, looks: int, step: int, rules: CanaryConfig, seed: int
) -> tuple[dict[str, float], float]:
    """Shares of first decisions (promote / rollback / wait at the horizon) of `judge`,
    and the mean look (1-based) of the promotions."""
    rng = np.random.default_rng(seed)
    shape = (canaries, looks)
    clicks_a = rng.binomial(step, CANARY_CTR, size=shape).cumsum(axis=1)
    clicks_b = rng.binomial(step, ctr_b, size=shape).cumsum(axis=1)
    buys_a = rng.binomial(step, CANARY_CONVERSION, size=shape).cumsum(axis=1)
    buys_b = rng.binomial(step, CANARY_CONVERSION, size=shape).cumsum(axis=1)
    counts = {"promote": 0, "rollback": 0, "wait": 0}
    promoted_at: list[int] = []
    for canary in range(canaries):
        decision = "wait"
        for look in range(looks):
            lists = step * (look + 1)
            champion = Kpis(lists, clicks_a[canary, look], buys_a[canary, look], lists, 0, 0.01)
            challenger = Kpis(lists, clicks_b[canary, look], buys_b[canary, look], lists, 0, 0.01)
            decision = judge(champion, challenger, rules)[0]
            if decision != "wait":
                if decision == "promote":
                    promoted_at.append(look + 1)
                break
        counts[decision] += 1
    shares = {name: count / canaries for name, count in counts.items()}
    return shares, float(np.mean(promoted_at)) if promoted_at else math.nan


def canary_report(canaries: int, looks: int) -> None:
    """Print the `canary judge` table (see the module doc)."""
    rules = CanaryConfig(min_lists=200, mde=0.2, alpha=0.05)
    planned = sequential_sample_size(CANARY_CTR, 0.2 * CANARY_CTR, alpha=0.05, power=0.8)
    step = math.ceil(planned / looks)
    null, _ = canary_decisions(CANARY_CTR, canaries, looks, step, rules, seed=1)
    lift, mean_look = canary_decisions(CANARY_CTR * 1.2, canaries, looks, step, rules, seed=2)
    error = math.sqrt(0.05 * 0.95 / canaries)
    print()
    print(
        f"canary judge: CTR {CANARY_CTR}, conversion {CANARY_CONVERSION}, α 0.05, mde 20%, "
        f"{canaries:,} canaries × {looks} looks of {step:,} lists per side (plan {planned:,})"
    )
    print("| case | promote | rollback | wait at the horizon |")
    print("|---|---|---|---|")
    print(
        f"| no lift | {null['promote']:.4f} (α = 0.05 ± {error:.4f}) | {null['rollback']:.4f} "
        f"| {null['wait']:.4f} |"
    )
    print(
        f"| true +20% CTR | {lift['promote']:.4f} (mean look {mean_look:.1f} of {looks}) "
        f"| {lift['rollback']:.4f} | {lift['wait']:.4f} |"
    )


def _overdispersed_arm(
    rng: np.random.Generator, shape: tuple[int, int], step: int, clicked_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (lists clicked, clicks, lists bought) per canary and look."""
    clicked = rng.binomial(step, clicked_share, size=shape)
    # the clicks beyond the first of k clicked lists: a sum of k Geometric(0.5)
    extra = np.where(clicked > 0, rng.negative_binomial(np.maximum(clicked, 1), 0.5), 0)
    bought = rng.binomial(step, CANARY_CONVERSION, size=shape)
    return clicked.cumsum(axis=1), (clicked + extra).cumsum(axis=1), bought.cumsum(axis=1)


def overdispersed_decisions(
    clicked_b: float, canaries: int, looks: int, step: int, *, per_list: bool, seed: int
) -> dict[str, float]:
    """Shares of first decisions of `judge` on over-dispersed clicks (see the module doc)."""
    rules = CanaryConfig(min_lists=200, mde=0.2, alpha=0.05)
    rng = np.random.default_rng(seed)
    arms = [_overdispersed_arm(rng, (canaries, looks), step, share) for share in (0.1, clicked_b)]
    counts = {"promote": 0, "rollback": 0, "wait": 0}
    for canary in range(canaries):
        decision = "wait"
        for look in range(looks):
            lists = step * (look + 1)
            sides = []
            for clicked, clicks, bought in arms:
                at = (canary, look)
                lists_counted = (
                    (float(clicked[at]), float(bought[at])) if per_list else (None, None)
                )
                sides.append(
                    Kpis(
                        lists, float(clicks[at]), float(bought[at]), lists, 0, 0.01, *lists_counted
                    )
                )
            decision = judge(sides[0], sides[1], rules)[0]
            if decision != "wait":
                break
        counts[decision] += 1
    return {name: count / canaries for name, count in counts.items()}


def overdispersed_report(canaries: int, looks: int) -> None:
    """Print the over-dispersed `canary judge` table (see the module doc)."""
    planned = sequential_sample_size(0.1, 0.02, alpha=0.05, power=0.8)
    step = math.ceil(planned / looks)
    error = math.sqrt(0.05 * 0.95 / canaries)
    print()
    print(
        f"canary judge on over-dispersed clicks: 10% of lists clicked, 2 clicks per clicked "
        f"list, {canaries:,} canaries × {looks} looks of {step:,} lists per side (plan "
        f"{planned:,})"
    )
    print("| case | tested on | promote | rollback | wait at the horizon |")
    print("|---|---|---|---|---|")
    for case, share, seed in (("no lift", 0.1, 5), ("true +20% lists clicked", 0.12, 6)):
        for unit, per_list in (("lists clicked / lists", True), ("clicks / lists", False)):
            shares = overdispersed_decisions(
                share, canaries, looks, step, per_list=per_list, seed=seed
            )
            shown = f"{shares['promote']:.4f}"
            if share == 0.1:
                shown += f" (α = 0.05 ± {error:.4f})"
            print(
                f"| {case} | {unit} | {shown} | {shares['rollback']:.4f} | {shares['wait']:.4f} |"
            )


def _clicks(rng: np.random.Generator, activity: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Clicks per shown item: activity × position bias × relevance × 0.5, as Bernoulli."""
    bias = 1.0 / np.log2(np.arange(relevant.shape[1]) + 2.0)
    chance = np.minimum(1.0, 0.5 * activity[:, None] * bias[None, :] * relevant)
    return rng.random(relevant.shape) < chance


def modes_report(experiments: int) -> None:
    """Print the A/B against interleaving table (see the module doc)."""
    users = 20_000
    print()
    print(
        f"A/B against interleaving: {experiments} experiments per case, up to {users:,} "
        "users, a look every 500"
    )
    print("| case | mode | a significant verdict by the horizon | median users to it |")
    print("|---|---|---|---|")
    for case, rate_b in (("B 20% better", 0.12), ("no difference", 0.10)):
        for mode, share, median in _modes(experiments, 0.10, rate_b, users):
            shown = f"{median:,.0f}" if math.isfinite(median) else f"> {users:,}"
            print(f"| {case} | {mode} | {share:.3f} | {shown} |")


def _modes(
    experiments: int, rate_a: float, rate_b: float, users: int, step: int = 500, k: int = 10
) -> list[tuple[str, float, float]]:
    """(mode, share of experiments with a significant verdict, median users to it)."""
    found: dict[str, list[float]] = {"ab": [], "ab, Bernoulli variance": [], "interleaving": []}
    for seed in range(experiments):
        rng = np.random.default_rng(1000 + seed)
        activity = rng.gamma(0.5, 2.0, size=users)
        # A/B: even users see A, odd users B
        arm = np.arange(users) % 2
        relevant = rng.random((users, k)) < np.where(arm == 0, rate_a, rate_b)[:, None]
        clicks = _clicks(rng, activity, relevant).sum(axis=1)
        # interleaving: rounds of two positions, the coin says which team picks first
        first_b = rng.random((users, k // 2)) < 0.5
        team_b = np.stack([first_b, ~first_b], axis=2).reshape(users, k)
        relevant = rng.random((users, k)) < np.where(team_b, rate_b, rate_a)
        shown = _clicks(rng, activity, relevant)
        wins_b = (shown & team_b).sum(axis=1) > (shown & ~team_b).sum(axis=1)
        wins_a = (shown & ~team_b).sum(axis=1) > (shown & team_b).sum(axis=1)
        needed = dict.fromkeys(found, math.inf)
        for seen in range(step, users + 1, step):
            a, b = arm[:seen] == 0, arm[:seen] == 1
            seen_clicks = clicks[:seen]
            ab = decide_ab(
                ArmCounts(
                    lists=int(a.sum()),
                    clicks=int(seen_clicks[a].sum()),
                    clicks_squares=float((seen_clicks[a] ** 2).sum()),
                ),
                ArmCounts(
                    lists=int(b.sum()),
                    clicks=int(seen_clicks[b].sum()),
                    clicks_squares=float((seen_clicks[b] ** 2).sum()),
                ),
                metric="ctr",
                alpha=0.05,
                mde=0.2,
                min_lists=200,
            )
            if ab.verdict.startswith("significant") and math.isinf(needed["ab"]):
                needed["ab"] = seen
            # what `canary judge` does against older servers: counts, the Bernoulli variance
            bernoulli = decide_ab(
                ArmCounts(lists=int(a.sum()), clicks=int(seen_clicks[a].sum())),
                ArmCounts(lists=int(b.sum()), clicks=int(seen_clicks[b].sum())),
                metric="ctr",
                alpha=0.05,
                mde=0.2,
                min_lists=200,
            )
            key = "ab, Bernoulli variance"
            if bernoulli.verdict.startswith("significant") and math.isinf(needed[key]):
                needed[key] = seen
            inter = decide_interleaving(
                int(wins_a[:seen].sum()),
                int(wins_b[:seen].sum()),
                alpha=0.05,
                mde=0.05,
                min_decided=100,
            )
            if inter.verdict.startswith("significant") and math.isinf(needed["interleaving"]):
                needed["interleaving"] = seen
            if not any(math.isinf(value) for value in needed.values()):
                break
        for mode, value in needed.items():
            found[mode].append(value)
    return [
        (mode, float(np.mean(np.isfinite(values))), float(np.median(values)))
        for mode, values in found.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--looks", type=int, default=100)
    parser.add_argument("--baseline", type=float, default=0.05)
    parser.add_argument("--mde", type=float, default=0.1, help="relative lift to detect")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--power", type=float, default=0.8)
    parser.add_argument("--canaries", type=int, default=0, help="canary judge runs per case")
    parser.add_argument("--canary-looks", type=int, default=20)
    parser.add_argument("--interleaving", type=int, default=0, help="A/B vs interleaving runs")
    parser.add_argument(
        "--overdispersed", type=int, default=0, help="canary runs per case, over-dispersed clicks"
    )
    args = parser.parse_args()
    absolute = args.baseline * args.mde
    planned = sequential_sample_size(args.baseline, absolute, alpha=args.alpha, power=args.power)
    fixed = fixed_sample_size(args.baseline, absolute, alpha=args.alpha, power=args.power)
    null_msprt, null_peek = rejections(
        args.baseline, args.baseline, planned, args.looks, args.experiments, absolute, args.alpha
    )
    power, _ = rejections(
        args.baseline + absolute,
        args.baseline,
        planned,
        args.looks,
        args.experiments,
        absolute,
        args.alpha,
    )
    error = math.sqrt(args.alpha * (1 - args.alpha) / args.experiments)
    print(
        f"baseline {args.baseline}, lift {args.mde:.0%} ({absolute:g} absolute), α {args.alpha}, "
        f"{args.experiments:,} experiments × {args.looks} looks"
    )
    print("| quantity | value |")
    print("|---|---|")
    print(f"| lists per side, sequential plan (power {args.power}) | {planned:,} |")
    print(f"| lists per side, one-look z-test | {fixed:,} |")
    print(f"| false positives, mSPRT, no true lift | {null_msprt:.4f} (±{error:.4f}) |")
    print(f"| false positives, z-test at every look | {null_peek:.4f} |")
    print(f"| power, mSPRT, true lift, up to the planned lists | {power:.4f} |")
    if args.canaries:
        canary_report(args.canaries, args.canary_looks)
    if args.overdispersed:
        overdispersed_report(args.overdispersed, args.canary_looks)
    if args.interleaving:
        modes_report(args.interleaving)


if __name__ == "__main__":
    main()
