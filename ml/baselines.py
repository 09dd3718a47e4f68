"""Baseline forecasters: what a model must beat before anyone should trust it.

Every baseline is a function ``(panel, group, t) -> np.ndarray`` of predicted counts, one per cell, for month index
``t`` that reads only months ``< t`` (``t == panel.n_months`` forecasts the month after the last observed). Spatial
baselines output scores that are rescaled to counts so that they can be scored on deviance and calibration too.

Months the panel did not observe (NaN: a force-month missing or partial) are skipped, never read as zero: last month
is the last observed month, means are over observed months, and the spatial baselines fill an unobserved cell-month
with that cell's mean over its observed history. A cell with no observed history at all predicts 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from ml.features import nan_weighted_mean, recency_weights
from ml.panel import Panel


def _history(panel: Panel, group: str, t: int) -> np.ndarray:
    """Columns before ``t``; the single guard against reading the target month or later."""
    counts = panel.group_counts(group)
    if not 1 <= t <= panel.n_months:
        raise ValueError(f"month index {t} needs 1 <= t <= {panel.n_months} (at least one earlier month)")
    return counts[:, :t]


def _filled(hist: np.ndarray) -> np.ndarray:
    """History with each unobserved (NaN) cell-month replaced by the cell's mean over its observed months (0 when
    the cell has none)."""
    missing = np.isnan(hist)
    if not missing.any():
        return hist
    known = (~missing).sum(axis=1)
    means = np.where(known > 0, np.where(missing, 0.0, hist).sum(axis=1) / np.maximum(known, 1), 0.0)
    return np.where(missing, means[:, None], hist)


def _known(pred: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """``pred`` where defined, else the cell's mean over its observed history, else 0."""
    if not np.isnan(pred).any():
        return pred
    return np.where(np.isnan(pred), _filled(hist).mean(axis=1) if hist.shape[1] else 0.0, pred)


def last_month(panel: Panel, group: str, t: int) -> np.ndarray:
    """Naive persistence: next month looks like the last observed month."""
    hist = _history(panel, group, t)
    last = hist[:, -1].copy()
    for back in range(2, hist.shape[1] + 1):
        gap = np.isnan(last)
        if not gap.any():
            break
        last[gap] = hist[gap, -back]
    return np.nan_to_num(last, nan=0.0)


def rolling_mean(k: int) -> Callable[[Panel, str, int], np.ndarray]:
    """Mean of the last ``k`` months (fewer when the history is shorter)."""
    if k < 1:
        raise ValueError(f"rolling window must be at least 1 month, got {k}")

    def rolling(panel: Panel, group: str, t: int) -> np.ndarray:
        hist = _history(panel, group, t)
        window = hist[:, -k:]
        if not np.isnan(window).any():
            return window.mean(axis=1)
        known = ~np.isnan(window)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(known, window, 0.0).sum(axis=1) / known.sum(axis=1)
        return _known(mean, hist)

    rolling.__name__ = f"rolling_{k}"
    return rolling


def ewma(halflife: float = 2.0) -> Callable[[Panel, str, int], np.ndarray]:
    """Exponentially weighted mean of all past months, weight 0.5 ** (age / halflife) with age 0 for month t-1.

    Weights are normalised to sum to one over the months available, so the forecast is a count (Brown 1959,
    Statistical Forecasting for Inventory Control, simple exponential smoothing with alpha = 1 - 0.5 ** (1/h)).
    """
    if halflife <= 0:
        raise ValueError(f"halflife must be positive, got {halflife}")

    def smoothed(panel: Panel, group: str, t: int) -> np.ndarray:
        hist = _history(panel, group, t)
        return np.nan_to_num(nan_weighted_mean(hist, recency_weights(hist.shape[1], halflife)), nan=0.0)

    smoothed.__name__ = "ewma"
    return smoothed


def _pairs(panel: Panel, radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All cell pairs (i, j) whose centres lie within ``radius_m``, with their distance (cached per panel)."""
    key = ("pairs", float(radius_m))
    cache = panel.cache()
    if key not in cache and panel.parent is not None:
        # A subset's pairs are its parent's pairs between kept cells, renumbered.
        parent, keep = panel.parent
        i, j, d = _pairs(parent, radius_m)
        renumber = np.cumsum(keep) - 1
        both = keep[i] & keep[j]
        cache[key] = (renumber[i[both]], renumber[j[both]], d[both])
    if key not in cache:
        tree = cKDTree(panel.xy)
        coo = tree.sparse_distance_matrix(tree, radius_m, output_type="coo_matrix")
        # Whether self-pairs (distance 0) come back depends on the output type, so drop them and add the
        # diagonal once.
        off = coo.row != coo.col
        n = panel.n_cells
        i = np.concatenate([coo.row[off], np.arange(n)])
        j = np.concatenate([coo.col[off], np.arange(n)])
        d = np.concatenate([coo.data[off], np.zeros(n)])
        cache[key] = (i, j, d)
    return cache[key]


def kernel_matrix(panel: Panel, bandwidth_m: float) -> sparse.csr_matrix:
    """Gaussian kernel K[i, j] = exp(-d_ij^2 / (2 h^2)) cut at 3 h, each column normalised to sum to one.

    Column normalisation makes K mass-conserving: every incident in cell j is spread over the cells near j and
    still counts once, so the smoothed surface keeps the total (exactly, apart from float error).
    """
    key = ("kde", float(bandwidth_m))
    cache = panel.cache()
    if key not in cache:
        i, j, d = _pairs(panel, 3.0 * bandwidth_m)
        k = sparse.csr_matrix((np.exp(-(d**2) / (2 * bandwidth_m**2)), (i, j)), shape=(panel.n_cells,) * 2)
        colsum = np.asarray(k.sum(axis=0)).ravel()
        cache[key] = (k @ sparse.diags(1.0 / colsum)).tocsr()
    return cache[key]


def kernel_density(bandwidth_m: float = 150.0, months: int = 3) -> Callable[[Panel, str, int], np.ndarray]:
    """Kernel density estimate of the last ``months`` months' mean counts on the cell centres.

    A Gaussian kernel of bandwidth h metres (Silverman 1986, Density Estimation for Statistics and Data Analysis,
    eq. 4.5, evaluated at the H3 cell centres rather than on a raster) spreads each cell's recent mean count to
    cells within 3 h. The default h of 150 m keeps about 60% of a resolution-9 cell's mass at home and spreads the
    rest over its first ring (centres 320-345 m apart); the ring-2 share is under 1%.
    """
    if bandwidth_m <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth_m}")

    def kde(panel: Panel, group: str, t: int) -> np.ndarray:
        recent = _filled(_history(panel, group, t))[:, -months:].mean(axis=1)
        return kernel_matrix(panel, bandwidth_m) @ recent

    kde.__name__ = "kde"
    return kde


def cell_spacing_m(panel: Panel) -> float:
    """Median distance between the centres of ring-1 neighbours: the length of one 'cell' step."""
    coo = panel.ring1.tocoo()
    if coo.nnz == 0:
        return float("nan")
    return float(np.median(np.linalg.norm(panel.xy[coo.row] - panel.xy[coo.col], axis=1)))


def prospective_hotspot(
    bandwidth_m: float = 400.0, window: tuple[int, int] = (1, 2)
) -> Callable[[Panel, str, int], np.ndarray]:
    """Prospective hot-spotting (Bowers, Johnson & Pease 2004, "Prospective hot-spotting: the future of crime
    mapping?", British Journal of Criminology 44(5), 641-658).

    The original scores each 50 m grid cell by summing, over every burglary within 400 m and the last two
    months, the weight (1 / (1 + d)) * (1 / (1 + a)), with d the distance in grid cells and a the age in weeks.
    Adapted here to monthly counts on H3 cells: every incident of month t - a (a from ``window[0]`` = 1 to
    ``window[1]`` = 2 months ago) in a cell whose centre is within ``bandwidth_m`` contributes
    (1 / (1 + d)) * (1 / (1 + a)), where d = centre distance / cell spacing (0 for the cell itself, about 1 for
    ring 1) and a is the age in months (1 for the last month). Events are counted per cell and month, not placed
    exactly, because the published data is already snapped to map points and aggregated by month.

    The score is a risk surface, not a count: it is rescaled so that it sums to the mean monthly total over the
    window, which keeps the ranking and makes deviance and calibration meaningful.
    """
    first, last = window
    if not 1 <= first <= last:
        raise ValueError(f"window must be (first, last) months ago with 1 <= first <= last, got {window}")

    def prospective(panel: Panel, group: str, t: int) -> np.ndarray:
        hist = _filled(_history(panel, group, t))
        key = ("prospective", float(bandwidth_m))
        cache = panel.cache()
        if key not in cache:
            i, j, d = _pairs(panel, bandwidth_m)
            spacing = cell_spacing_m(panel)
            steps = d / spacing if np.isfinite(spacing) and spacing > 0 else np.zeros_like(d)
            cache[key] = sparse.csr_matrix((1.0 / (1.0 + steps), (i, j)), shape=(panel.n_cells,) * 2)
        spatial = cache[key]
        ages = [a for a in range(first, last + 1) if a <= hist.shape[1]]
        recent = sum(hist[:, -a] / (1.0 + a) for a in ages)
        score = spatial @ recent
        target = np.mean([hist[:, -a].sum() for a in ages])
        total = score.sum()
        return score * (target / total) if total > 0 else score

    prospective.__name__ = "prospective"
    return prospective


BASELINES: dict[str, Callable[[Panel, str, int], np.ndarray]] = {
    "last_month": last_month,
    "rolling_3": rolling_mean(3),
    "rolling_12": rolling_mean(12),
    "ewma": ewma(2.0),
    "kde": kernel_density(150.0),
    "prospective": prospective_hotspot(400.0),
}
