"""Getis-Ord Gi* hot and cold spots of crime counts on H3 ring-1 neighbourhoods, with FDR-corrected bins.

Gi* (Getis & Ord 1992; Ord & Getis 1995, "Local spatial autocorrelation statistics: distributional issues and
an application", Geographical Analysis 27(4)) compares the sum of counts in a cell's neighbourhood, the cell
itself included, with what the study-area mean would give:

    Gi* = (sum_j w_ij x_j - xbar sum_j w_ij) / (S sqrt((n sum_j w_ij^2 - (sum_j w_ij)^2) / (n - 1)))

a z-score under the normal approximation. The statistic comes from PySAL's ``esda.G_Local`` (binary weights,
``star=True``, analytical z-scores, no permutations); it is not re-derived here.

Many cells are tested at once, so significance is judged on Benjamini-Hochberg adjusted p-values (Benjamini &
Hochberg 1995), as ArcGIS Pro's Hot Spot Analysis does with its FDR option. Bins follow ArcGIS's ``Gi_Bin``:
+3/-3 hot/cold at 99% confidence, +2/-2 at 95%, +1/-1 at 90%, 0 not significant. Because BH at level q rejects
exactly the tests whose adjusted p-value is <= q, binning adjusted p-values at 0.01/0.05/0.10 is the same as
running the FDR procedure once per confidence level, as ArcGIS does.
"""

from __future__ import annotations

import warnings

import h3
import numpy as np
import pandas as pd
from esda import G_Local
from libpysal.weights import W
from scipy import stats

BIN_LEVELS = ((3, 0.01), (2, 0.05), (1, 0.10))
SERIES_COLUMNS = ["h3_cell", "month", "count", "gi_z", "p_value", "p_fdr", "gi_bin"]


def ring1_weights(cell_ids, cells: pd.DataFrame | None = None) -> W:
    """Binary Gi* weights: each cell with itself and its H3 ring-1 neighbours inside the study area.

    ``cell_ids`` is the study area (its order is the weights' ``id_order``). Neighbour lists come from
    ``dim_cells.neighbours_ring1`` (comma-separated H3 ids); a cell missing from ``cells`` gets its ring from
    ``h3.grid_ring``. Neighbours outside the study area are dropped, so a cell on the force boundary has
    fewer than seven weights: its neighbourhood is what the force actually covers.
    """
    ids = list(dict.fromkeys(cell_ids))
    inside = set(ids)
    ring: dict[str, str] = {}
    if cells is not None and "neighbours_ring1" in cells:
        sub = cells.loc[cells["h3_cell"].isin(inside), ["h3_cell", "neighbours_ring1"]]
        ring = dict(zip(sub["h3_cell"], sub["neighbours_ring1"], strict=True))
    neighbours = {}
    for c in ids:
        listed = ring.get(c)
        around = listed.split(",") if isinstance(listed, str) and listed else h3.grid_ring(c, 1)
        # The focal cell itself is a neighbour with weight 1: that is what makes it Gi* rather than Gi.
        neighbours[c] = [c, *(n for n in dict.fromkeys(s.strip() for s in around) if n in inside and n != c)]
    weights = {c: [1.0] * len(ns) for c, ns in neighbours.items()}
    return W(neighbours, weights, id_order=ids, silence_warnings=True)


def _gi_bins(z: np.ndarray, p_fdr: np.ndarray) -> np.ndarray:
    level = np.zeros(z.size, dtype=np.int8)
    for value, q in reversed(BIN_LEVELS):
        level[p_fdr <= q] = value
    return (np.sign(z).astype(np.int8) * level).astype(np.int8)


def _gi_star_values(y: np.ndarray, w: W) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """z, two-sided p, BH-adjusted p and bins for one time slice aligned with ``w.id_order``."""
    if y.size < 2 or np.all(y == y[0]):
        # No variation (e.g. a month without crime): Gi* is undefined, nothing can be a hot or cold spot.
        zeros = np.zeros(y.size)
        return zeros, np.ones(y.size), np.ones(y.size), zeros.astype(np.int8)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        z = np.asarray(G_Local(y, w, transform="B", permutations=0, star=True).Zs, dtype=float)
    # A cell whose neighbourhood is the whole study area has zero variance; treat it as not significant.
    z = np.where(np.isfinite(z), z, 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    p_fdr = stats.false_discovery_control(p, method="bh")
    return z, p, p_fdr, _gi_bins(z, p_fdr)


def gi_star(counts_for_month: pd.Series, cells: pd.DataFrame, alpha: float = 0.05,
            weights: W | None = None) -> pd.DataFrame:
    """Gi* hot and cold spots for one month.

    ``counts_for_month`` is a Series of counts indexed by h3_cell, covering the study area (zero-filled, as
    ``fct_cell_month_counts`` is); ``cells`` is ``dim_cells`` (for the neighbour lists). ``weights`` may be
    passed to reuse a :func:`ring1_weights` built over the same cells.

    Returns one row per cell: h3_cell, count, gi_z (Gi* z-score), p_value (two-sided, normal), p_fdr
    (Benjamini-Hochberg adjusted), gi_bin (-3..+3 as ArcGIS's Gi_Bin, after FDR) and significant
    (p_fdr <= alpha).
    """
    y_series = counts_for_month.groupby(level=0).sum()
    w = weights if weights is not None else ring1_weights(y_series.index, cells)
    y = y_series.reindex(w.id_order, fill_value=0).to_numpy(dtype=float)
    z, p, p_fdr, bins = _gi_star_values(y, w)
    return pd.DataFrame({
        "h3_cell": w.id_order, "count": y, "gi_z": z, "p_value": p, "p_fdr": p_fdr, "gi_bin": bins,
        "significant": p_fdr <= alpha,
    })


def cell_month_matrix(counts: pd.DataFrame, force: str, group: str,
                      value: str = "incident_count") -> pd.DataFrame:
    """Counts of one force and forecast group as a cell x month matrix (months sorted, gaps zero)."""
    sub = counts[(counts["force"] == force) & (counts["forecast_group"] == group)]
    return (sub.pivot_table(index="h3_cell", columns="month", values=value, aggfunc="sum", fill_value=0)
            .sort_index(axis=1).astype(float))


def gi_star_series(counts: pd.DataFrame, cells: pd.DataFrame, force: str, group: str,
                   months=None) -> pd.DataFrame:
    """Gi* for every month of one force and forecast group, for tracking hot spots through time.

    The study area is the force's cells in ``dim_cells`` (``cells``), counted zero where a month has no row;
    the weights are built once and reused for every month. ``months`` restricts the months analysed.

    Returns a tidy frame, one row per cell and month: h3_cell, month, count, gi_z, p_value, p_fdr, gi_bin
    (pivot it with ``pivot(index="h3_cell", columns="month", values="gi_z")`` for a cell x month matrix).
    """
    matrix = cell_month_matrix(counts, force, group)
    study = cells.loc[cells["force"] == force, "h3_cell"].drop_duplicates() if "force" in cells else None
    ids = study.tolist() if study is not None and len(study) else matrix.index.tolist()
    matrix = matrix.reindex(ids, fill_value=0.0)
    if months is not None:
        matrix = matrix.reindex(columns=sorted(months), fill_value=0.0)
    w = ring1_weights(ids, cells)
    parts = []
    for month in matrix.columns:
        y = matrix[month].to_numpy()
        z, p, p_fdr, bins = _gi_star_values(y, w)
        parts.append(pd.DataFrame({"h3_cell": ids, "month": month, "count": y, "gi_z": z, "p_value": p,
                                   "p_fdr": p_fdr, "gi_bin": bins}))
    if not parts:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SERIES_COLUMNS]
