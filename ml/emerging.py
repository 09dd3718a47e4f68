"""Emerging hot spot classes per H3 cell over a rolling window of months, after ArcGIS Pro's Emerging Hot Spot
Analysis ("How Emerging Hot Spot Analysis works", Esri, Space Time Pattern Mining toolbox).

Each month gets a Getis-Ord Gi* bin per cell (:mod:`ml.hotspots`, FDR-corrected); a bin is a significant hot
spot when it is > 0 (90% confidence or more) and a cold spot when it is < 0. The Mann-Kendall trend test
(Mann 1945; Kendall 1975; :mod:`ml.trend`, equal to ``pymannkendall.original_test``) on the cell's Gi*
z-score series measures whether the intensity of clustering rises or falls; ArcGIS also tests the trend of
the cell's counts, reported here as ``count_trend``/``count_trend_p`` for information. Differences from
ArcGIS: the Gi* neighbourhood is spatial only (H3 ring 1, one month at a time) rather than a space-time
neighbourhood, and bins are the FDR-corrected ones of :mod:`ml.hotspots`.

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

Missing data: a step (month) in which the cell's force was not observed is not a step without hot spots. It is
left out of the cell's series: the 90% shares are of the observed steps, the "final step" is the last observed
one, runs and "before" are counted over observed steps only, and the Mann-Kendall tests run on the observed
values. A force whose data for the last months has not arrived is therefore classified on the months it has,
and a missing month reads neither as a cold spot nor as a fall. Gi* for each month is computed over the observed
cells only (:mod:`ml.hotspots`). A cell with fewer than three observed steps gets No Pattern Detected.

Where two definitions overlap (a formerly cold cell that has just turned hot is both New and Oscillating),
the categories are tested in the order ArcGIS lists them (New, Consecutive, Intensifying, Persistent,
Diminishing, Sporadic, Oscillating, Historical; hot spot patterns before cold spot ones) and the first that
matches wins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.cell_months import month_add
from ml.hotspots import force_cell_months, gi_star_matrix
from ml.trend import TREND_NAMES, mann_kendall, mann_kendall_matrix

PATTERNS = ["New", "Consecutive", "Intensifying", "Persistent", "Diminishing", "Sporadic", "Oscillating",
            "Historical"]
NO_PATTERN = "No Pattern Detected"
HOT_CATEGORIES = [f"{p} Hot Spot" for p in PATTERNS]
COLD_CATEGORIES = [f"{p} Cold Spot" for p in PATTERNS]
CATEGORIES = [NO_PATTERN, *HOT_CATEGORIES, *COLD_CATEGORIES]
SHARE = 0.9  # ArcGIS's "90 percent of the time-step intervals"
MIN_STEPS = 3  # fewer observed steps carry no evidence of a pattern or a trend
COLUMNS = ["h3_cell", "category", "hot_steps", "cold_steps", "trend", "trend_p", "final_bin", "final_z",
           "count_trend", "count_trend_p", "observed_steps", "final_month"]
__all__ = ["CATEGORIES", "COLUMNS", "NO_PATTERN", "classify", "classify_cells", "emerging_hotspots",
           "mann_kendall"]


def _last(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last True of each row, and whether the row has one."""
    any_ = mask.any(axis=1)
    return mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1), any_


def _share(count: np.ndarray, steps: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(steps > 0, count / np.maximum(steps, 1), 0.0)


def _pattern_codes(flag, other, observed, steps, trend, up: int) -> np.ndarray:
    """Index into PATTERNS + 1 (0: none) of one side's pattern for every row: ``flag`` marks that side's
    significant bins, ``other`` the opposite side's, ``up`` the trend direction that means intensifying."""
    rows = np.arange(flag.shape[0])
    last, _ = _last(observed)
    count = flag.sum(axis=1)
    share_high = _share(count, steps) >= SHARE
    final = flag[rows, last]
    # Observed steps in the run of significant bins that ends in the final step.
    last_gap, has_gap = _last(observed & ~flag)
    seen_through = np.cumsum(observed, axis=1)[rows, last_gap]
    run = np.where(has_gap, steps - seen_through, steps)
    fresh = count == run  # nothing significant before that run
    code = np.select(
        [~final & share_high, ~final,
         fresh & (run == 1), fresh & ~share_high,
         share_high & (trend == up), share_high & (trend == 0), share_high,
         other.any(axis=1)],
        [PATTERNS.index("Historical") + 1, 0,
         PATTERNS.index("New") + 1, PATTERNS.index("Consecutive") + 1,
         PATTERNS.index("Intensifying") + 1, PATTERNS.index("Persistent") + 1, PATTERNS.index("Diminishing") + 1,
         PATTERNS.index("Oscillating") + 1],
        PATTERNS.index("Sporadic") + 1)
    return code


def classify_cells(bins, z, observed=None, trend_alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Emerging hot spot category of every row (cell) of (n_cells, n_steps) Gi* ``bins`` and ``z``-scores, oldest
    step first, using only the steps where ``observed`` (default: all) is True.

    Returns arrays: category_code (index into :data:`CATEGORIES`), hot_steps, cold_steps, trend (+1/0/-1) and
    trend_p (Mann-Kendall on the observed z-scores at ``trend_alpha``), final_bin and final_z (at the last
    observed step, -1 when none), observed_steps and final_step.
    """
    b = np.asarray(bins)
    zs = np.asarray(z, dtype=float)
    obs = np.ones(b.shape, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    if b.ndim != 2 or zs.shape != b.shape or obs.shape != b.shape:
        raise ValueError(f"bins, z and observed must be 2-D and alike: {b.shape}, {zs.shape}, {obs.shape}")
    steps = obs.sum(axis=1)
    hot, cold = (b > 0) & obs, (b < 0) & obs
    trend, p, _ = mann_kendall_matrix(np.where(obs, zs, np.nan), trend_alpha)
    hot_code = _pattern_codes(hot, cold, obs, steps, trend, up=1)
    cold_code = _pattern_codes(cold, hot, obs, steps, trend, up=-1)
    last, seen = _last(obs)
    rows = np.arange(b.shape[0])
    # Hot spot patterns are tested before cold ones; a cell that is hot now or mostly hot always has one.
    use_hot = hot[rows, last] | (_share(hot.sum(axis=1), steps) >= SHARE)
    use_cold = ~use_hot & (cold[rows, last] | (_share(cold.sum(axis=1), steps) >= SHARE))
    code = np.where(use_hot, hot_code, np.where(use_cold, cold_code + len(PATTERNS), 0))
    code = np.where(steps >= MIN_STEPS, code, 0)
    return {"category_code": code.astype(np.int8), "hot_steps": hot.sum(axis=1), "cold_steps": cold.sum(axis=1),
            "trend": trend, "trend_p": p, "final_bin": np.where(seen, b[rows, last], 0).astype(np.int8),
            "final_z": np.where(seen, zs[rows, last], np.nan), "observed_steps": steps,
            "final_step": np.where(seen, last, -1)}


def classify(bins, z, trend_alpha: float = 0.05) -> dict:
    """Emerging hot spot category of one cell from its Gi* bins and z-scores, oldest first (NaN z = not observed).

    Returns category, hot_steps, cold_steps, trend and trend_p (Mann-Kendall on the z-scores at
    ``trend_alpha``), final_bin and final_z.
    """
    zs = np.asarray(z, dtype=float).reshape(1, -1)
    out = classify_cells(np.asarray(bins).reshape(1, -1), zs, np.isfinite(zs), trend_alpha)
    return {"category": CATEGORIES[int(out["category_code"][0])], "hot_steps": int(out["hot_steps"][0]),
            "cold_steps": int(out["cold_steps"][0]), "trend": TREND_NAMES[int(out["trend"][0])],
            "trend_p": float(out["trend_p"][0]), "final_bin": int(out["final_bin"][0]),
            "final_z": float(out["final_z"][0])}


def emerging_table(cells, months, counts, bins, z, observed, trend_alpha: float = 0.05) -> pd.DataFrame:
    """The :data:`COLUMNS` frame for (n_cells, n_months) arrays: classes, z-score trend and count trend."""
    out = classify_cells(bins, z, observed, trend_alpha)
    count_trend, count_p, _ = mann_kendall_matrix(np.where(observed, counts, np.nan), trend_alpha)
    names = np.array([TREND_NAMES[k] for k in (-1, 0, 1)], dtype=object)
    labels = np.asarray(months, dtype=object)
    return pd.DataFrame({
        "h3_cell": cells,
        "category": np.asarray(CATEGORIES, dtype=object)[out["category_code"]],
        "hot_steps": out["hot_steps"].astype(np.int64), "cold_steps": out["cold_steps"].astype(np.int64),
        "trend": names[out["trend"] + 1], "trend_p": out["trend_p"],
        "final_bin": out["final_bin"].astype(np.int64), "final_z": out["final_z"],
        "count_trend": names[count_trend + 1], "count_trend_p": count_p,
        "observed_steps": out["observed_steps"].astype(np.int64),
        "final_month": np.where(out["final_step"] >= 0, labels[np.maximum(out["final_step"], 0)], None),
    }, columns=COLUMNS)


def emerging_hotspots(counts: pd.DataFrame, cells: pd.DataFrame, force: str, group: str, window: int = 12,
                      end_month: str | None = None, series: pd.DataFrame | None = None,
                      trend_alpha: float = 0.05, observed_months=None) -> pd.DataFrame:
    """Emerging hot spot category of every study-area cell of one force and forecast group.

    Uses the ``window`` calendar months up to and including ``end_month`` (default: the latest month in
    ``counts``). ``observed_months`` lists the force's observed months (default: the months in which the force
    has any count row); the others are left out as the module docstring says. ``series`` may be a precomputed
    :func:`ml.hotspots.gi_star_series` covering those months (its absent cell-months are the unobserved ones).
    Returns one row per cell with :data:`COLUMNS`: h3_cell, category (one of :data:`CATEGORIES`), hot_steps,
    cold_steps, trend and trend_p (Mann-Kendall on the Gi* z-scores), final_bin, final_z, count_trend and
    count_trend_p (Mann-Kendall on the counts), observed_steps and final_month (the last observed month).
    """
    end = end_month or counts["month"].max()
    if not isinstance(end, str):
        return pd.DataFrame(columns=COLUMNS)
    months = [month_add(end, k) for k in range(1 - window, 1)]
    panel = force_cell_months(counts, cells, force, group, months, observed_months)
    if series is not None:
        sub = series[series["month"].isin(months)]
        z = sub.pivot(index="h3_cell", columns="month", values="gi_z").reindex(index=panel.cells, columns=months)
        b = sub.pivot(index="h3_cell", columns="month", values="gi_bin").reindex_like(z)
        c = sub.pivot(index="h3_cell", columns="month", values="count").reindex_like(z)
        observed = z.notna().to_numpy()
        return emerging_table(panel.cells, months, c.to_numpy(dtype=float), b.fillna(0).to_numpy(dtype=np.int8),
                              z.to_numpy(dtype=float), observed, trend_alpha)
    x = panel.counts[group]
    z, _, _, bins = gi_star_matrix(x, panel.ring1(), panel.observed)
    return emerging_table(panel.cells, months, x, bins, z, panel.observed, trend_alpha)
