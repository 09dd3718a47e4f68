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
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

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


def _summary(values: np.ndarray) -> dict[str, float]:
    x, y = lorenz(values)
    out = {"cells": int(values.size), "incidents": float(values.sum())}
    # Interpolating the Lorenz curve gives the share held by exactly k% of cells, so forces of different
    # sizes are compared at the same fraction rather than at a rounded whole number of cells.
    for name, p in TOP_SHARES.items():
        out[name] = float(np.interp(p, x, y)) if values.sum() > 0 else float("nan")
    out["gini"] = gini(values)
    out["gini_corrected"] = gini_generalised(values)
    return out


def concentration(
    counts: pd.DataFrame,
    cells: pd.DataFrame | None = None,
    groups: Iterable[str] | None = None,
    value: str = "incident_count",
) -> pd.DataFrame:
    """Crime concentration per force, forecast group and month over a force's study-area cells.

    ``counts`` is ``fct_cell_month_counts`` (h3_cell, force, month, forecast_group, incident_count, ...),
    zero-filled over each force's study area. ``cells`` (``dim_cells``), if given, fixes the set of places per
    force: cells absent from ``counts`` count as zero and cells outside the force's ``dim_cells`` rows are
    dropped, so the denominator n is the study area, not the cells that happened to have crime. ``groups``
    restricts the forecast groups; ``value`` picks the count column (e.g. ``knife_enabled_count``).

    Returns one row per (force, forecast_group, month) with columns force, forecast_group, month, cells,
    incidents, top1_share, top5_share, top10_share, gini and gini_corrected (the generalised Gini G' of
    Bernasco & Steenbeek 2017; see :func:`gini_generalised`). Shares and Ginis are NaN in months without crime.
    """
    df = counts
    if groups is not None:
        df = df[df["forecast_group"].isin(list(groups))]
    places: dict[str, np.ndarray] = {}
    if cells is not None:
        for force, ids in cells.groupby("force")["h3_cell"]:
            places[force] = ids.drop_duplicates().to_numpy()
    rows = []
    for (force, group, month), g in df.groupby(KEYS, sort=True, observed=True):
        values = g[value].to_numpy(dtype=float)
        if cells is not None:
            ids = places.get(force)
            if ids is None:
                continue
            values = g.groupby("h3_cell")[value].sum().reindex(ids, fill_value=0).to_numpy(dtype=float)
        rows.append({"force": force, "forecast_group": group, "month": month, **_summary(values)})
    return pd.DataFrame(rows, columns=COLUMNS)
