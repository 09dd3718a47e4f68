"""Prediction intervals for counts: a negative binomial around each predicted rate.

A cell's count next month is taken as negative binomial with mean mu (the forecast) and variance
mu + alpha * mu^2 (NB2; Cameron & Trivedi 2013, Regression Analysis of Count Data, 2nd ed., section 3.3). alpha = 0
is the Poisson. alpha is fitted by the moment estimator of Cameron & Trivedi (1990), "Regression-based tests for
overdispersion in the Poisson model", Journal of Econometrics 46(3): the least-squares slope, through the origin, of
((y - mu)^2 - y) on mu^2, which is unbiased for alpha mu^2 whatever mu is.

The interval at level 0.9 runs from the 5% to the 95% quantile of that distribution, both ends included; the counts
are whole numbers, so a share of at least 90% of observed counts falls inside when the distribution is right (more
where mu is small: a cell forecast at 0.02 has the interval [0, 0] and is inside 98% of the time).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

LEVEL = 0.9
# Rates below this are treated as this: the quantile functions need a positive mean.
MIN_RATE = 1e-9
# Above this the dispersion is taken as unidentified rather than believed (a handful of wild residuals).
MAX_DISPERSION = 50.0


def fit_dispersion(mu, y, weights=None) -> float:
    """NB2 dispersion alpha of the counts ``y`` around the predicted rates ``mu`` (0 when they look Poisson or
    under-dispersed); rows with an unknown count (NaN) are left out. Raises ValueError on mismatched lengths."""
    mu = np.clip(np.asarray(mu, dtype=float), MIN_RATE, None)
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    if not mu.shape == y.shape == w.shape or mu.ndim != 1:
        raise ValueError(f"mu, y and weights must be 1-D of one length, got {mu.shape}, {y.shape}, {w.shape}")
    ok = ~np.isnan(y) & ~np.isnan(mu)
    mu, y, w = mu[ok], y[ok], w[ok]
    den = float((w * mu**2).sum())
    if den <= 0:
        return 0.0
    alpha = float((w * ((y - mu) ** 2 - y)).sum()) / den
    return float(min(max(alpha, 0.0), MAX_DISPERSION))


def interval(mu, dispersion: float, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper): the central ``level`` interval of NB2(mu, dispersion) per cell, whole numbers."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if dispersion < 0 or not np.isfinite(dispersion):
        raise ValueError(f"dispersion must be a non-negative number, got {dispersion}")
    mu = np.clip(np.asarray(mu, dtype=float), MIN_RATE, None)
    # The quantiles of each distinct rate, spread back over the cells: baselines repeat few rates over many cells
    # (averages of a few whole counts), and SciPy's discrete quantile function costs about a microsecond a value.
    rates, back = np.unique(mu, return_inverse=True)
    q = ((1 - level) / 2, (1 + level) / 2)
    if dispersion < 1e-9:
        lo, hi = (monotone_map(lambda r, p=p: stats.poisson.ppf(p, r), rates) for p in q)
    else:
        n = 1.0 / dispersion
        lo, hi = (monotone_map(lambda r, p=p: stats.nbinom.ppf(p, n, n / (n + r)), rates) for p in q)
    shape = np.shape(mu)
    return (np.asarray(lo, dtype=float)[back].reshape(shape), np.asarray(hi, dtype=float)[back].reshape(shape))


def monotone_map(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``f(x)`` for increasing ``x`` where ``f`` is non-decreasing and takes few distinct values (a quantile as the
    rate grows: the negative binomial and the Poisson are stochastically increasing in their mean), with ``f``
    evaluated at a few points only: between two points where it gives the same value it gives that value
    everywhere, so each range is halved, all ranges of a round in one call, until its ends agree. About
    (distinct values) x log2(len(x)) evaluations instead of one a value; the values are ``f``'s own."""
    x = np.asarray(x)
    n = len(x)
    if n <= 64:
        return np.asarray(f(x), dtype=float)
    out = np.empty(n, dtype=float)
    known = np.zeros(n, dtype=bool)
    ends = np.array([0, n - 1])
    out[ends], known[ends] = f(x[ends]), True
    first, last = ends[:1], ends[1:]
    while len(first):
        open_ = (out[first] != out[last]) & (last - first > 1)
        first, last = first[open_], last[open_]
        if not len(first):
            break
        mid = (first + last) // 2
        out[mid], known[mid] = f(x[mid]), True
        first, last = np.concatenate([first, mid]), np.concatenate([mid, last])
    # A point never evaluated lies between two evaluated ones that agree: it takes the value on its left.
    return out[np.maximum.accumulate(np.where(known, np.arange(n), 0))]


def coverage(lower, upper, obs) -> float:
    """Share of observed counts within [lower, upper] (ends included); NaN counts are left out."""
    lower, upper, obs = (np.asarray(a, dtype=float) for a in (lower, upper, obs))
    ok = ~np.isnan(obs)
    if not ok.any():
        return float("nan")
    inside = (obs[ok] >= lower[ok]) & (obs[ok] <= upper[ok])
    return float(inside.mean())


# How many earlier target months a baseline's dispersion is fitted on.
DISPERSION_MONTHS = 3


def baseline_dispersion(fn: Callable, panel, group: str, cut: int, horizon: int,
                        months: int = DISPERSION_MONTHS) -> float:
    """Dispersion of a baseline ``fn`` (``ml.baselines`` signature) fitted on its own out-of-sample errors: for each
    of the last ``months`` target months s before ``cut`` (the first month not read), the forecast ``fn`` made at
    horizon ``horizon`` (from months before s - horizon + 1) against the count observed in s. 0 when the panel is
    too short to have any such month."""
    counts = panel.group_counts(group)
    mus, ys = [], []
    for s in range(max(horizon, cut - months), cut):
        origin = s - horizon + 1
        if origin < 1:
            continue
        mus.append(np.asarray(fn(panel, group, origin), dtype=float))
        ys.append(counts[:, s])
    if not mus:
        return 0.0
    return fit_dispersion(np.concatenate(mus), np.concatenate(ys))
