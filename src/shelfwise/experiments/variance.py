"""CUPED: less variance from what each unit did before the experiment started.

Deng, Xu, Kohavi and Walker (WSDM 2013): with X a unit's pre-period activity (its
clicks per list in the weeks before) and Y its in-experiment metric, Y − θ(X − E[X])
with θ = cov(X, Y) / var(X) has the same mean as Y and variance var(Y)(1 − ρ²). The
same θ must be used for both arms (estimated on the pooled units), or the adjustment
biases the difference.
"""

from __future__ import annotations

import numpy as np

from shelfwise.contracts import FloatArray
from shelfwise.errors import DataError


def cuped_theta(pre: FloatArray, post: FloatArray) -> float:
    """θ = cov(pre, post) / var(pre) over the pooled units of every arm (0 when pre is flat)."""
    if pre.shape != post.shape or pre.size < 2:
        raise DataError(
            f"CUPED needs one pre-period value per unit and at least two units; got "
            f"{pre.shape} pre and {post.shape} post values"
        )
    variance = float(np.var(pre, ddof=1))
    if variance == 0.0:
        return 0.0
    return float(np.cov(pre, post, ddof=1)[0, 1] / variance)


def cuped_adjust(post: FloatArray, pre: FloatArray, theta: float, pre_mean: float) -> FloatArray:
    """The adjusted metric Y − θ (X − mean X), with the pooled θ and pooled mean of X."""
    return np.asarray(post - theta * (pre - pre_mean), dtype=np.float64)


__all__ = ["cuped_adjust", "cuped_theta"]
