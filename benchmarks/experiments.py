"""The canary's statistics by simulation: error rate under peeking, power, sample sizes.

Simulates two-arm experiments on clicks per served list (Bernoulli, baseline CTR 5%),
looked at `--looks` times each (the canary CronJob looks every 30 minutes), and counts
how often each method declares a difference:

- the mixture SPRT `canary judge` uses (`shelfwise.experiments.sequential`);
- a fixed-horizon two-sided z-test applied at every look (what "peeking" does);
- with a true lift of `--mde`, the mSPRT's power at its planned sample size.

Usage:
    .venv/bin/python benchmarks/experiments.py [--experiments 10000] [--looks 100]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats

from shelfwise.experiments.sequential import (
    fixed_sample_size,
    log_likelihood_ratio,
    mixing_variance,
    sequential_sample_size,
)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--looks", type=int, default=100)
    parser.add_argument("--baseline", type=float, default=0.05)
    parser.add_argument("--mde", type=float, default=0.1, help="relative lift to detect")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--power", type=float, default=0.8)
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


if __name__ == "__main__":
    main()
