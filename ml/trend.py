"""The Mann-Kendall trend test (Mann 1945; Kendall 1975) for many series at once.

Each row of a (n_series, n_steps) array is one series, oldest step first; NaN marks a step that was not observed
and is skipped, as ``pymannkendall.original_test`` skips it. Per row:

    S = sum over pairs i < j of sign(x_j - x_i)
    Var(S) = (n (n - 1) (2n + 5) - sum over tie groups t (t - 1) (2t + 5)) / 18
    Z = (S - 1) / sqrt(Var S) if S > 0, (S + 1) / sqrt(Var S) if S < 0, 0 if S = 0
    p = 2 (1 - Phi(|Z|))

with n the number of observed steps. S comes from the signs of all pairwise differences; steps are few (a
12- to 36-month window gives 66 to 630 pairs), so the pairs are laid out as columns and rows are processed in
chunks. The tie term needs, for each observed value, how many observed values equal it (``c``): summed over the
values, ``(c - 1)(2c + 5)`` gives the same total as ``t (t - 1)(2t + 5)`` summed over tie groups of size ``t``.
Results equal ``pymannkendall.original_test`` (the unit tests compare them on random series with ties and gaps).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

# Rows per chunk: keeps the (rows, pairs) difference array near 64 MB for a 36-step window.
CHUNK_ELEMENTS = 8_000_000
INCREASING, NO_TREND, DECREASING = 1, 0, -1
TREND_NAMES = {INCREASING: "increasing", NO_TREND: "no trend", DECREASING: "decreasing"}


def mann_kendall_matrix(values, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mann-Kendall test of every row of ``values`` (n_series, n_steps; NaN = not observed).

    Returns ``(trend, p, z)``: trend is int8 (+1 increasing, -1 decreasing, 0 no trend at two-sided level
    ``alpha``), p the two-sided p-value and z the continuity-corrected statistic. A row with fewer than three
    observed steps, or no variation, has no trend and p = 1.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"values must be 2-D (series x steps), got shape {x.shape}")
    n_rows, n_steps = x.shape
    s = np.zeros(n_rows)
    ties = np.zeros(n_rows)
    if n_steps >= 2 and n_rows:
        i, j = np.triu_indices(n_steps, 1)
        # Pair -> step incidence: a tie on pair (i, j) adds one equal partner to step i and to step j.
        incidence = np.zeros((i.size, n_steps), dtype=np.float32)
        incidence[np.arange(i.size), i] = 1.0
        incidence[np.arange(i.size), j] = 1.0
        step = max(1, CHUNK_ELEMENTS // i.size)
        for lo in range(0, n_rows, step):
            block = x[lo:lo + step]
            diff = block[:, j] - block[:, i]  # NaN when either step is missing: every comparison below is False
            s[lo:lo + step] = (diff > 0).sum(axis=1, dtype=np.int64) - (diff < 0).sum(axis=1, dtype=np.int64)
            partners = (diff == 0).astype(np.float32) @ incidence
            ties[lo:lo + step] = (partners * (2.0 * partners + 7.0)).sum(axis=1)  # (c-1)(2c+5) with c-1 = partners
    n = np.isfinite(x).sum(axis=1).astype(float)
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, (s - 1) / np.sqrt(var), np.where(s < 0, (s + 1) / np.sqrt(var), 0.0))
    z = np.where(np.isfinite(z) & (n >= 3), z, 0.0)
    p = 2 * (1 - stats.norm.cdf(np.abs(z)))
    significant = np.abs(z) > stats.norm.ppf(1 - alpha / 2)
    trend = np.where(significant, np.sign(z), 0).astype(np.int8)
    return trend, p, z


def mann_kendall(values, alpha: float = 0.05) -> tuple[str, float]:
    """Mann-Kendall trend of one series: ('increasing' | 'decreasing' | 'no trend', two-sided p-value)."""
    trend, p, _ = mann_kendall_matrix(np.asarray(values, dtype=float).reshape(1, -1), alpha)
    return TREND_NAMES[int(trend[0])], float(p[0])
