"""Per-cell reference implementation of Gi* and emerging hot spot classes: PySAL's ``esda.G_Local`` one month at a
time on libpysal weights, ``pymannkendall.original_test`` and the ArcGIS rules one cell at a time.

It is the readable definition that :mod:`ml.hotspots` and :mod:`ml.emerging` (which compute the same for every
cell and month at once) are tested and benchmarked against; the pipeline does not use it. Missing cell-months
follow the same rule: each month's Gi* runs on its observed cells only, and each cell's series keeps its observed
steps only.
"""

from __future__ import annotations

import warnings

import numpy as np
import pymannkendall as mk
from esda import G_Local
from libpysal.weights import W
from scipy import sparse, stats

from ml.emerging import CATEGORIES, MIN_STEPS, NO_PATTERN, SHARE
from ml.hotspots import gi_bins


def gi_star_month(y: np.ndarray, weights: sparse.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """(z, bins) of one month over the cells given (``weights`` with the self-weight on the diagonal)."""
    if y.size < 2 or np.all(y == y[0]):
        return np.zeros(y.size), np.zeros(y.size, dtype=np.int8)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        w = W.from_sparse(sparse.csr_matrix(weights))
        z = np.asarray(G_Local(y, w, transform="B", permutations=0, star=True).Zs, dtype=float)
    z = np.where(np.isfinite(z), z, 0.0)
    p_fdr = stats.false_discovery_control(2.0 * stats.norm.sf(np.abs(z)), method="bh")
    return z, gi_bins(z, p_fdr)


def gi_star_months(values: np.ndarray, weights: sparse.spmatrix, observed: np.ndarray | None = None):
    """(z, bins) for every month: NaN z and bin 0 where not observed."""
    obs = np.ones(values.shape, dtype=bool) if observed is None else observed
    z = np.full(values.shape, np.nan)
    bins = np.zeros(values.shape, dtype=np.int8)
    w = sparse.csr_matrix(weights)
    for t in range(values.shape[1]):
        seen = np.flatnonzero(obs[:, t])
        if seen.size:
            z[seen, t], bins[seen, t] = gi_star_month(values[seen, t], w[seen][:, seen])
    return z, bins


def mann_kendall(values, alpha: float = 0.05) -> tuple[str, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 3 or np.all(v == v[0]):
        return "no trend", 1.0
    res = mk.original_test(v, alpha=alpha)
    return str(res.trend), float(res.p)


def _pattern(flag: np.ndarray, other: np.ndarray, trend: str, up: str) -> str | None:
    n = flag.size
    share = flag.sum() / n
    if not flag[-1]:
        return "Historical" if share >= SHARE else None
    run = n - (np.flatnonzero(~flag)[-1] + 1) if (~flag).any() else n
    if not flag[: n - run].any():
        if run == 1:
            return "New"
        if share < SHARE:
            return "Consecutive"
    if share >= SHARE:
        if trend == up:
            return "Intensifying"
        return "Persistent" if trend == "no trend" else "Diminishing"
    return "Oscillating" if other.any() else "Sporadic"


def classify(bins, z, trend_alpha: float = 0.05) -> tuple[str, str, float]:
    """(category, z-score trend, its p) of one cell; NaN z marks a step that was not observed."""
    zs = np.asarray(z, dtype=float)
    keep = np.isfinite(zs)
    b, zs = np.asarray(bins)[keep], zs[keep]
    trend, p = mann_kendall(zs, trend_alpha)
    if b.size < MIN_STEPS:
        return NO_PATTERN, trend, p
    hot, cold = b > 0, b < 0
    category = NO_PATTERN
    if hot[-1] or hot.mean() >= SHARE:
        found = _pattern(hot, cold, trend, up="increasing")
        category = f"{found} Hot Spot" if found else NO_PATTERN
    elif cold[-1] or cold.mean() >= SHARE:
        found = _pattern(cold, hot, trend, up="decreasing")
        category = f"{found} Cold Spot" if found else NO_PATTERN
    assert category in CATEGORIES
    return category, trend, p


def emerging_classes(values: np.ndarray, weights: sparse.spmatrix, observed: np.ndarray | None = None,
                     trend_alpha: float = 0.05) -> list[str]:
    """Category of every cell of a (cells x months) count matrix, one month and one cell at a time."""
    z, bins = gi_star_months(values, weights, observed)
    return [classify(b, zz, trend_alpha)[0] for b, zz in zip(bins, z, strict=True)]
