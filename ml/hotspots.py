"""Getis-Ord Gi* hot and cold spots of crime counts on H3 ring-1 neighbourhoods, with FDR-corrected bins, for
every cell and month at once.

Gi* (Getis & Ord 1992; Ord & Getis 1995, "Local spatial autocorrelation statistics: distributional issues and
an application", Geographical Analysis 27(4)) compares the sum of counts in a cell's neighbourhood, the cell
itself included, with what the study-area mean would give:

    Gi* = (sum_j w_ij x_j - xbar K_i) / (S sqrt((n K_i - K_i^2) / (n - 1)))

with binary weights (K_i = sum_j w_ij, the neighbourhood size), n cells, mean xbar and standard deviation S
(divisor n): a z-score under the normal approximation. With the weights as a sparse matrix the neighbourhood sums
of all months are one product ``W @ X``. The values equal PySAL's ``esda.G_Local(y, w, transform="B",
star=True)`` z-scores (a unit test compares them).

Many cells are tested at once, so significance is judged on Benjamini-Hochberg adjusted p-values (Benjamini &
Hochberg 1995), as ArcGIS Pro's Hot Spot Analysis does with its FDR option. Bins follow ArcGIS's ``Gi_Bin``:
+3/-3 hot/cold at 99% confidence, +2/-2 at 95%, +1/-1 at 90%, 0 not significant. Because BH at level q rejects
exactly the tests whose adjusted p-value is <= q, binning adjusted p-values at 0.01/0.05/0.10 is the same as
running the FDR procedure once per confidence level, as ArcGIS does.

Missing data: a cell-month that was not observed (its force's data for that month missing or partial; see the
coverage ledger) is unknown, not zero. It is left out of that month entirely: its value enters no neighbour's
sum and no neighbourhood size, n, xbar and S are over the observed cells of the study area, the FDR correction
runs over the observed cells, and the cell itself gets no z-score (NaN) and no bin (0, never a cold spot) that
month. A month with fewer than two observed cells, or no variation among them, has no hot or cold spots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse, stats

from ml.cell_months import CellMonths, ring1_matrix

BIN_LEVELS = ((3, 0.01), (2, 0.05), (1, 0.10))
SERIES_COLUMNS = ["h3_cell", "month", "count", "gi_z", "p_value", "p_fdr", "gi_bin"]
__all__ = ["BIN_LEVELS", "SERIES_COLUMNS", "gi_bins", "gi_star", "gi_star_matrix", "gi_star_series", "ring1_matrix"]


def gi_bins(z: np.ndarray, p_fdr: np.ndarray) -> np.ndarray:
    """ArcGIS ``Gi_Bin`` (-3..+3) from z-scores and BH-adjusted p-values; 0 where either is NaN."""
    z, p_fdr = np.asarray(z, dtype=float), np.asarray(p_fdr, dtype=float)
    level = np.zeros(z.shape, dtype=np.int8)
    for value, q in reversed(BIN_LEVELS):
        level[p_fdr <= q] = value
    return np.where(np.isfinite(z), np.sign(np.nan_to_num(z)), 0).astype(np.int8) * level


def gi_star_matrix(values, weights: sparse.spmatrix, observed=None, areas=None):
    """Gi* of every cell and month: ``values`` is (n_cells, n_months), ``weights`` a :func:`ring1_matrix` over the
    same cells, ``observed`` a boolean (n_cells, n_months) mask (default: all observed) and ``areas`` one study-area
    label per cell (default: one area). Weights must not link cells of different areas.

    Returns ``(z, p, p_fdr, bins)`` arrays of the same shape: z-score, two-sided normal p, Benjamini-Hochberg
    adjusted p (per area and month, over its observed cells) and the ArcGIS bin; NaN z and p and bin 0 where
    not observed.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"values must be 2-D (cells x months), got shape {x.shape}")
    obs = np.ones(x.shape, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    if obs.shape != x.shape or weights.shape != (x.shape[0], x.shape[0]):
        raise ValueError(f"shapes differ: values {x.shape}, observed {obs.shape}, weights {weights.shape}")
    obs = obs & np.isfinite(x)
    labels, area = np.unique(np.zeros(x.shape[0], dtype=np.int64) if areas is None else np.asarray(areas),
                             return_inverse=True)
    member = sparse.csr_matrix((np.ones(area.size), (area, np.arange(area.size))), shape=(labels.size, area.size))
    x0 = np.where(obs, x, 0.0)
    of = obs.astype(float)
    n = (member @ of)[area]  # observed cells per area and month, per cell
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = ((member @ x0)[area]) / n
        sq = member @ np.where(obs, (x - mean) ** 2, 0.0)
        sd = np.sqrt(sq[area] / n)
        k = weights @ of  # neighbourhood size among the observed cells
        z = (weights @ x0 - mean * k) / (sd * np.sqrt((n * k - k * k) / (n - 1)))
    # No variation, a neighbourhood covering the whole area, or fewer than two cells: nothing is significant.
    z = np.where(obs, np.where(np.isfinite(z), z, 0.0), np.nan)
    p = 2.0 * stats.norm.sf(np.abs(z))
    p_fdr = np.full(x.shape, np.nan)
    for a in range(labels.size):
        rows = np.flatnonzero(area == a)
        sub_obs = obs[rows]
        whole = sub_obs.all(axis=0)
        if whole.any():
            p_fdr[np.ix_(rows, np.flatnonzero(whole))] = stats.false_discovery_control(
                p[np.ix_(rows, np.flatnonzero(whole))], axis=0, method="bh")
        for t in np.flatnonzero(~whole & sub_obs.any(axis=0)):
            seen = rows[sub_obs[:, t]]
            p_fdr[seen, t] = stats.false_discovery_control(p[seen, t], method="bh")
    return z, p, p_fdr, gi_bins(z, p_fdr)


def gi_star(counts_for_month: pd.Series, cells: pd.DataFrame, alpha: float = 0.05,
            weights: sparse.spmatrix | None = None) -> pd.DataFrame:
    """Gi* hot and cold spots for one month.

    ``counts_for_month`` is a Series of counts indexed by h3_cell; the study area is every cell of ``cells``
    (``dim_cells`` rows, with their neighbour lists), a cell without a count counting zero and counts of other
    cells ignored. ``weights`` may be a :func:`ring1_matrix` over ``cells["h3_cell"]``.

    Returns one row per cell: h3_cell, count, gi_z (Gi* z-score), p_value (two-sided, normal), p_fdr
    (Benjamini-Hochberg adjusted), gi_bin (-3..+3 as ArcGIS's Gi_Bin, after FDR) and significant
    (p_fdr <= alpha).
    """
    ids = cells["h3_cell"].drop_duplicates().to_numpy()
    if weights is None:
        ring = cells.drop_duplicates("h3_cell")["neighbours_ring1"] if "neighbours_ring1" in cells else None
        weights = ring1_matrix(ids, None if ring is None else ring.to_numpy())
    y = counts_for_month.groupby(level=0).sum().reindex(ids, fill_value=0).to_numpy(dtype=float)
    z, p, p_fdr, bins = gi_star_matrix(y.reshape(-1, 1), weights)
    return pd.DataFrame({
        "h3_cell": ids, "count": y, "gi_z": z[:, 0], "p_value": p[:, 0], "p_fdr": p_fdr[:, 0],
        "gi_bin": bins[:, 0], "significant": p_fdr[:, 0] <= alpha,
    })


def force_cell_months(counts: pd.DataFrame, cells: pd.DataFrame, force: str, group: str, months=None,
                      observed_months=None, value: str = "incident_count") -> CellMonths:
    """One force's (cells x months) counts of one group, with its observed mask (see :mod:`ml.cell_months`)."""
    sub_cells = cells[cells["force"] == force] if "force" in cells else cells.assign(force=force)
    if sub_cells.empty:
        raise ValueError(f"force {force!r} has no cells in dim_cells")
    sub_counts = counts[counts["force"] == force]
    coverage = None
    if observed_months is not None:
        coverage = pd.DataFrame({"force": force, "month": sorted(observed_months), "status": "complete"})
    return CellMonths.from_frames(sub_counts, sub_cells, groups=[group], coverage=coverage, months=months,
                                  value=value)


def gi_star_series(counts: pd.DataFrame, cells: pd.DataFrame, force: str, group: str, months=None,
                   observed_months=None) -> pd.DataFrame:
    """Gi* for every month of one force and forecast group, for tracking hot spots through time.

    ``counts`` is ``fct_cell_month_counts`` (sparse: a cell without a row in an observed month had no crime);
    the study area is the force's cells in ``cells`` (``dim_cells``). ``months`` restricts the months analysed.
    ``observed_months`` lists the force's observed months (default: every month in which the force has any count
    row); the others are left out (see the module docstring) and have no rows in the result.

    Returns a tidy frame, one row per cell and observed month: h3_cell, month, count, gi_z, p_value, p_fdr,
    gi_bin (pivot it with ``pivot(index="h3_cell", columns="month", values="gi_z")`` for a cell x month matrix).
    """
    panel = force_cell_months(counts, cells, force, group, months, observed_months)
    x = panel.counts[group]
    z, p, p_fdr, bins = gi_star_matrix(x, panel.ring1(), panel.observed)
    rows, cols = np.nonzero(panel.observed)
    return pd.DataFrame({
        "h3_cell": panel.cells[rows], "month": np.asarray(panel.months, dtype=object)[cols], "count": x[rows, cols],
        "gi_z": z[rows, cols], "p_value": p[rows, cols], "p_fdr": p_fdr[rows, cols], "gi_bin": bins[rows, cols],
    }, columns=SERIES_COLUMNS)
