"""Emerging hot spot classes per H3 cell over a rolling window of months, after ArcGIS Pro's Emerging Hot Spot
Analysis ("How Emerging Hot Spot Analysis works", Esri, Space Time Pattern Mining toolbox).

Each month gets a Getis-Ord Gi* bin per cell (:mod:`ml.hotspots`, FDR-corrected); a bin is a significant hot
spot when it is > 0 (90% confidence or more) and a cold spot when it is < 0. The Mann-Kendall trend test
(Mann 1945; Kendall 1975; ``pymannkendall.original_test``) on the cell's Gi* z-score series measures whether
the intensity of clustering rises or falls; ArcGIS also tests the trend of the cell's counts, reported here as
``count_trend``/``count_trend_p`` for information. Differences from ArcGIS: the Gi* neighbourhood is spatial
only (H3 ring 1, one month at a time) rather than a space-time neighbourhood, and bins are the FDR-corrected
ones of :mod:`ml.hotspots`.

The categories, as ArcGIS defines them ("hot" = significant hot bin; 90% = share of the window's steps):

- New Hot Spot: hot in the final time step and never hot before.
- Consecutive Hot Spot: a single uninterrupted run of at least two hot bins ending in the final time step;
  never hot before that run; less than 90% of all steps hot.
- Intensifying Hot Spot: hot in >= 90% of steps including the final step, and the intensity of clustering
  (Gi* z-score) has a statistically significant upward Mann-Kendall trend.
- Persistent Hot Spot: hot in >= 90% of steps including the final step, with no significant trend.
- Diminishing Hot Spot: hot in >= 90% of steps including the final step, with a significant downward trend.
- Sporadic Hot Spot: hot in the final step, an on-again off-again hot spot before; less than 90% of steps hot
  and never a significant cold spot.
- Oscillating Hot Spot: hot in the final step, with a history of also being a significant cold spot; less
  than 90% of steps hot.
- Historical Hot Spot: not hot in the final step, but hot in at least 90% of steps.
- The eight cold spot patterns mirror these with hot and cold swapped; for cold spots "intensifying" means the
  z-score trend is significantly downward (ever colder) and "diminishing" significantly upward.
- No Pattern Detected: none of the above.

Where two definitions overlap (a formerly cold cell that has just turned hot is both New and Oscillating),
the categories are tested in the order ArcGIS lists them (New, Consecutive, Intensifying, Persistent,
Diminishing, Sporadic, Oscillating, Historical; hot spot patterns before cold spot ones) and the first that
matches wins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymannkendall as mk

from ml.hotspots import gi_star_series

PATTERNS = ["New", "Consecutive", "Intensifying", "Persistent", "Diminishing", "Sporadic", "Oscillating",
            "Historical"]
NO_PATTERN = "No Pattern Detected"
HOT_CATEGORIES = [f"{p} Hot Spot" for p in PATTERNS]
COLD_CATEGORIES = [f"{p} Cold Spot" for p in PATTERNS]
CATEGORIES = [NO_PATTERN, *HOT_CATEGORIES, *COLD_CATEGORIES]
SHARE = 0.9  # ArcGIS's "90 percent of the time-step intervals"
COLUMNS = ["h3_cell", "category", "hot_steps", "cold_steps", "trend", "trend_p", "final_bin", "final_z",
           "count_trend", "count_trend_p"]


def mann_kendall(values, alpha: float = 0.05, cache: dict | None = None) -> tuple[str, float]:
    """Mann-Kendall trend of a series: ('increasing' | 'decreasing' | 'no trend', two-sided p-value).

    The test's S, its tie-corrected variance and hence p depend only on the signs of the pairwise
    differences, so ``cache`` (a dict shared across cells) keys results on that sign pattern: many cells
    share one, and ``pymannkendall.original_test`` costs about a millisecond per call.
    """
    v = np.asarray(values, dtype=float)
    if v.size < 3 or np.all(v == v[0]):
        # Fewer than three points or a flat series carry no evidence of trend.
        return "no trend", 1.0
    key = None
    if cache is not None:
        i, j = np.triu_indices(v.size, 1)
        key = np.sign(v[j] - v[i]).astype(np.int8).tobytes()
        if key in cache:
            return cache[key]
    res = mk.original_test(v, alpha=alpha)
    out = (str(res.trend), float(res.p))
    if key is not None:
        cache[key] = out
    return out


def _pattern(flag: np.ndarray, other: np.ndarray, trend: str, up: str) -> str | None:
    """The hot spot pattern of one side (``flag`` = significant bins of that side, ``other`` = the opposite
    side's), with ``up`` the Mann-Kendall direction that means intensifying. None when no pattern applies."""
    n = flag.size
    share = flag.sum() / n
    if not flag[-1]:
        return "Historical" if share >= SHARE else None
    # Length of the run of significant bins that ends in the final step.
    run = n - (np.flatnonzero(~flag)[-1] + 1) if (~flag).any() else n
    before_run = flag[: n - run]
    if not before_run.any():
        if run == 1:
            return "New"
        if share < SHARE:
            return "Consecutive"
    if share >= SHARE:
        if trend == up:
            return "Intensifying"
        if trend == "no trend":
            return "Persistent"
        return "Diminishing"
    return "Oscillating" if other.any() else "Sporadic"


def classify(bins, z, trend_alpha: float = 0.05, cache: dict | None = None) -> dict:
    """Emerging hot spot category of one cell from its Gi* bins and z-scores, oldest first.

    Returns category, hot_steps, cold_steps, trend and trend_p (Mann-Kendall on the z-scores at
    ``trend_alpha``), final_bin and final_z.
    """
    b = np.asarray(bins)
    zs = np.asarray(z, dtype=float)
    hot, cold = b > 0, b < 0
    trend, p = mann_kendall(zs, trend_alpha, cache)
    category = NO_PATTERN
    if hot[-1] or hot.mean() >= SHARE:
        found = _pattern(hot, cold, trend, up="increasing")
        category = f"{found} Hot Spot" if found else NO_PATTERN
    elif cold[-1] or cold.mean() >= SHARE:
        found = _pattern(cold, hot, trend, up="decreasing")
        category = f"{found} Cold Spot" if found else NO_PATTERN
    return {"category": category, "hot_steps": int(hot.sum()), "cold_steps": int(cold.sum()), "trend": trend,
            "trend_p": p, "final_bin": int(b[-1]), "final_z": float(zs[-1])}


def _window_months(counts: pd.DataFrame, force: str, group: str, window: int, end_month: str | None):
    months = sorted(counts.loc[(counts["force"] == force) & (counts["forecast_group"] == group), "month"].unique())
    if end_month is not None:
        months = [m for m in months if m <= end_month]
    return months[-window:]


def emerging_hotspots(counts: pd.DataFrame, cells: pd.DataFrame, force: str, group: str, window: int = 12,
                      end_month: str | None = None, series: pd.DataFrame | None = None,
                      trend_alpha: float = 0.05) -> pd.DataFrame:
    """Emerging hot spot category of every study-area cell of one force and forecast group.

    Uses the ``window`` months up to and including ``end_month`` (default: the latest month in ``counts``).
    ``series`` may be a precomputed :func:`ml.hotspots.gi_star_series` covering those months, to avoid
    recomputing Gi*. Returns one row per cell: h3_cell, category (one of :data:`CATEGORIES`), hot_steps,
    cold_steps, trend and trend_p (Mann-Kendall on the Gi* z-scores), final_bin, final_z, and count_trend
    and count_trend_p (Mann-Kendall on the counts).
    """
    months = _window_months(counts, force, group, window, end_month)
    if not months:
        return pd.DataFrame(columns=COLUMNS)
    if series is None:
        series = gi_star_series(counts, cells, force, group, months=months)
    series = series[series["month"].isin(months)]
    z = series.pivot(index="h3_cell", columns="month", values="gi_z").sort_index(axis=1)
    b = series.pivot(index="h3_cell", columns="month", values="gi_bin").reindex_like(z)
    c = series.pivot(index="h3_cell", columns="month", values="count").reindex_like(z)
    rows = []
    cache: dict = {}
    for cell, zs, bs, cs in zip(z.index, z.to_numpy(), b.to_numpy(), c.to_numpy(), strict=True):
        row = classify(bs, zs, trend_alpha, cache)
        row["count_trend"], row["count_trend_p"] = mann_kendall(cs, trend_alpha, cache)
        rows.append({"h3_cell": cell, **row})
    return pd.DataFrame(rows, columns=COLUMNS)
