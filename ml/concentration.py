"""How concentrated crime is across a force's H3 cells: top-k shares, Lorenz curve, Gini and generalised Gini.

The law of crime concentration at place (Weisburd 2015) is usually reported as the share of crime in the top x%
of places. Bernasco & Steenbeek (2017) argue for the Lorenz curve and the Gini coefficient instead, and show that
both are biased when crime data are sparse (fewer crimes than places): a proportional spread of N crimes over
n > N places is impossible, so the ordinary Gini cannot fall below 1 - N/n and overstates concentration in
small monthly counts at H3 resolution 9. Their generalised Gini measures concentration against the line of
maximal equality attainable with N crimes instead of the diagonal.

Reference: W. Bernasco and W. Steenbeek (2017), "More places than crimes: implications for evaluating the law of
crime concentration at place", Journal of Quantitative Criminology 33(3): 451-467,
doi:10.1007/s10940-016-9324-7 (reference implementation: the authors' R package `lorenzgini`).

The places are a force's study area (its cells in ``dim_cells``); a cell without crime in an observed month counts
zero. A force-month that was not observed (missing or partial in the coverage ledger) is unknown: it gets no row,
rather than a month of zeros that would read as no crime at all.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ml.cell_months import CellMonths

TOP_SHARES = {"top1_share": 0.01, "top5_share": 0.05, "top10_share": 0.10}
KEYS = ["force", "forecast_group", "month"]
COLUMNS = [*KEYS, "cells", "incidents", *TOP_SHARES, "gini", "gini_corrected"]


def lorenz(counts_array) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve of counts per place, places ordered from most to least crime.

    Returns ``(x, y)`` with ``n + 1`` points starting at (0, 0): ``x[i] = i / n`` is the share of places and
    ``y[i]`` the share of all crime in the ``i`` places with the most crime, so the curve lies above the
    diagonal (the orientation Bernasco & Steenbeek 2017 and the crime-and-place literature use) and
    ``np.interp(0.05, x, y)`` is the share of crime in the top 5% of places. With no crime at all the shares
    are undefined and ``y`` is all NaN.
    """
    c = np.sort(np.asarray(counts_array, dtype=float).ravel())[::-1]
    if c.size and c[-1] < 0:
        raise ValueError("counts must be non-negative")
    n, total = c.size, c.sum()
    x = np.arange(n + 1, dtype=float) / max(n, 1)
    if total <= 0:
        return x, np.full(n + 1, np.nan)
    y = np.concatenate([[0.0], np.cumsum(c) / total])
    return x, y


def gini(counts_array) -> float:
    """Ordinary (sample, uncorrected) Gini coefficient of counts per place.

    G = 2 * sum_i i * y_(i) / (n * sum_i y_i) - (n + 1) / n, with y sorted ascending (Bernasco & Steenbeek
    2017, eq. 1; the "biased" Gini of DescTools/lorenzgini). Equals 1 - 2 * (area above the descending Lorenz
    curve); 0 when every place has the same count, (n - 1) / n when one place has all crime. NaN without crime.
    """
    y = np.sort(np.asarray(counts_array, dtype=float).ravel())
    n, total = y.size, y.sum()
    if n == 0 or total <= 0:
        return float("nan")
    i = np.arange(1, n + 1, dtype=float)
    return float(2.0 * (i * y).sum() / (n * total) - (n + 1) / n)


def gini_generalised(counts_array) -> float:
    """Bernasco & Steenbeek's (2017) generalised Gini G' for sparse counts.

    With N crimes over n places and N < n, maximal equality is N places with one crime each and n - N with
    none; its Lorenz curve runs from (0, 0) to (N/n, 1) and its Gini is 1 - N/n. G' is the area between the
    observed Lorenz curve and that line of maximal equality, relative to the area between that line and the
    line of maximal inequality, which works out to

        G' = 1 - max(1, n / N) * (1 - G)        (= (G - (1 - N/n)) / (N/n) when N < n, = G when N >= n)

    as in the authors' `lorenzgini::gini(generalized = TRUE, unbiased = FALSE)`. The correction raises the
    floor, not the ceiling: it re-scales the Gini against the *most equal* distribution N crimes allow, so
    N crimes in N distinct places score 0 rather than 1 - N/n. Their optional small-sample factor
    n / (n - 1) (Deltas 2003) is not applied, so G' and G stay comparable. NaN without crime.
    """
    y = np.asarray(counts_array, dtype=float).ravel()
    g = gini(y)
    if np.isnan(g):
        return g
    n, total = y.size, y.sum()
    return float(1.0 - max(1.0, n / total) * (1.0 - g))


def concentration_matrix(values, observed=None) -> dict[str, np.ndarray]:
    """Concentration of every column (month) of an (n_cells, n_months) count matrix over its observed cells.

    Returns arrays of length n_months: cells (observed cells), incidents, the :data:`TOP_SHARES`, gini and
    gini_corrected, as :func:`lorenz`, :func:`gini` and :func:`gini_generalised` define them (NaN without crime).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"values must be 2-D (cells x months), got shape {x.shape}")
    obs = np.isfinite(x) if observed is None else np.asarray(observed, dtype=bool) & np.isfinite(x)
    if (x[obs] < 0).any():
        raise ValueError("counts must be non-negative")
    x = np.where(obs, x, np.nan)
    n = obs.sum(axis=0).astype(float)
    total = np.nansum(x, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ascending = np.nan_to_num(np.sort(x, axis=0))  # unobserved cells sort last and weigh nothing
        rank = np.arange(1, x.shape[0] + 1, dtype=float)[:, None]
        g = 2.0 * (rank * ascending).sum(axis=0) / (n * total) - (n + 1) / n
        out = {"cells": n.astype(np.int64), "incidents": total}
        # The descending Lorenz curve through (i / n, share of crime in the i busiest cells), interpolated so
        # forces of different sizes are compared at the same fraction of cells.
        lorenz_y = np.vstack([np.zeros(x.shape[1]), np.cumsum(np.nan_to_num(-np.sort(-x, axis=0)), axis=0)]) / total
        cols = np.arange(x.shape[1])
        for name, p in TOP_SHARES.items():
            k = p * n
            lo = np.minimum(np.floor(k).astype(np.int64), np.maximum(n.astype(np.int64) - 1, 0))
            frac = k - lo
            out[name] = lorenz_y[lo, cols] + frac * (lorenz_y[np.minimum(lo + 1, x.shape[0]), cols] - lorenz_y[lo, cols])
        out["gini"] = g
        out["gini_corrected"] = 1.0 - np.maximum(1.0, n / total) * (1.0 - g)
    crime = (total > 0) & (n > 0)
    for name in [*TOP_SHARES, "gini", "gini_corrected"]:
        out[name] = np.where(crime, out[name], np.nan)
    return out


def concentration_frame(panel: CellMonths, group: str) -> pd.DataFrame:
    """:data:`COLUMNS` rows of every force and observed month of one group of a :class:`CellMonths`."""
    parts = []
    months = np.asarray(panel.months, dtype=object)
    for force, rows in panel.force_slices().items():
        seen = panel.observed[rows].any(axis=0)
        if not seen.any():
            continue
        m = concentration_matrix(panel.counts[group][rows][:, seen], panel.observed[rows][:, seen])
        parts.append(pd.DataFrame({"force": force, "forecast_group": group, "month": months[seen], **m}))
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def concentration(
    counts: pd.DataFrame,
    cells: pd.DataFrame | None = None,
    groups: Iterable[str] | None = None,
    value: str = "incident_count",
    coverage: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Crime concentration per force, forecast group and observed month over a force's study-area cells.

    ``counts`` is ``fct_cell_month_counts`` (h3_cell, force, month, forecast_group, incident_count, ...), sparse or
    zero-filled. ``cells`` (``dim_cells``) fixes the places per force: cells without a count row count as zero, so
    the denominator n is the study area, not the cells that happened to have crime; without it the places are
    the cells that appear in ``counts`` (a cell listed under two forces stays with the first). ``groups``
    restricts the forecast groups (default: those in ``counts``); ``value`` picks the count column (e.g.
    ``knife_enabled_count``). ``coverage`` is the coverage ledger (force, month, status); without it a force-month
    is observed when the force has any count row that month.

    Returns one row per (force, forecast_group, observed month) with columns force, forecast_group, month,
    cells, incidents, top1_share, top5_share, top10_share, gini and gini_corrected (the generalised Gini G' of
    Bernasco & Steenbeek 2017; see :func:`gini_generalised`). Shares and Ginis are NaN in months without crime.
    """
    wanted = sorted(counts["forecast_group"].astype(str).unique()) if groups is None else list(groups)
    if cells is None:
        cells = counts[["h3_cell", "force"]].drop_duplicates("h3_cell")
    if counts.empty or not wanted:
        return pd.DataFrame(columns=COLUMNS)
    panel = CellMonths.from_frames(counts, cells, wanted, coverage=coverage, value=value)
    frames = [concentration_frame(panel, g) for g in wanted]
    return pd.concat(frames, ignore_index=True).sort_values(KEYS, ignore_index=True)
