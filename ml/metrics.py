"""Scores for a month of per-cell predictions against the counts that were then observed.

Hot-spot metrics rank cells by prediction and flag the top ``coverage`` share of the study area's cells (1%, 5%,
10% here, ``COVERAGES``); count metrics judge the predicted numbers themselves. Hit rate, PAI and PEI* give tied
predictions at the threshold fractional credit (their expected value under a random tie-break), so no method
gains or loses by the order cells are stored in; ``top_cells``, the flagged set itself, breaks ties by cell order
(a stable sort), so equal predictions give the same flags on every run.

When the observed month has no crime at all, the hot-spot metrics are undefined (there is nothing to capture) and
return NaN; so do the calibration ratios. NaN there means "no observed crime", never "the method failed".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COVERAGES = (0.01, 0.05, 0.10)
EPS = 1e-6


def _as_arrays(pred, obs) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=float)
    obs = np.asarray(obs, dtype=float)
    if pred.shape != obs.shape or pred.ndim != 1:
        raise ValueError(f"pred and obs must be 1-D arrays of one length, got {pred.shape} and {obs.shape}")
    if len(pred) == 0:
        raise ValueError("no cells to score")
    if np.isnan(pred).any():
        raise ValueError("predictions contain NaN")
    return pred, obs


def n_flagged(n_cells: int, coverage: float) -> int:
    """Number of cells flagged at ``coverage``: the nearest whole number of cells, at least one."""
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    return max(1, int(round(coverage * n_cells)))


def top_cells(pred, coverage: float) -> np.ndarray:
    """Indices of the flagged cells: highest prediction first, ties broken by cell order.

    Found by partition (linear time) rather than a full sort: a national month has about 300,000 cells and is ranked
    dozens of times per backtest origin."""
    pred = np.asarray(pred, dtype=float)
    n, k = len(pred), n_flagged(len(pred), coverage)
    if k >= n or np.isnan(pred).any():
        return np.argsort(-pred, kind="stable")[:k]
    threshold = np.partition(pred, n - k)[n - k]  # the k-th largest prediction
    above = np.flatnonzero(pred > threshold)
    tied = np.flatnonzero(pred == threshold)[: k - len(above)]
    chosen = np.concatenate([above, tied])
    return chosen[np.lexsort((chosen, -pred[chosen]))]


def _flagged(pred: np.ndarray, obs: np.ndarray, coverage: float, area=None) -> dict[str, float]:
    """Hit rate, PAI and PEI* at one coverage, each the expected value under a random order of tied predictions.

    The k flagged cells are those above the k-th largest prediction plus, of the cells tied with it, as many as are
    left; every tied cell is flagged with the same probability (k - cells above) / cells tied, so it brings that
    share of its crime and of its area. A method that predicts many equal values (last month's integer counts, a
    sparse group's rolling mean) is then neither helped nor handicapped by the order cells happen to be stored in,
    against a model whose scores are never tied. PAI is the expected hit rate over the expected area share.
    """
    n, k = len(pred), n_flagged(len(pred), coverage)
    total = obs.sum()
    if total <= 0:
        return {"hit_rate": float("nan"), "pai": float("nan"), "pei_star": float("nan")}
    threshold = np.partition(pred, n - k)[n - k]
    above, tied = pred > threshold, pred == threshold
    share_of_tied = (k - above.sum()) / tied.sum()
    hits = obs[above].sum() + share_of_tied * obs[tied].sum()
    if area is None:
        area_share = k / n
    else:
        area = np.asarray(area, dtype=float)
        area_share = (area[above].sum() + share_of_tied * area[tied].sum()) / area.sum()
    best = np.partition(obs, n - k)[n - k:].sum()
    return {"hit_rate": float(hits / total), "pai": float(hits / total / area_share),
            "pei_star": float(hits / best) if best > 0 else float("nan")}


def hit_rate(pred, obs, coverage: float) -> float:
    """Share of observed incidents that fall in the flagged cells: n / N.

    n is the count in the top ``coverage`` share of cells ranked by prediction, N the count in all cells
    (Chainey, Tompson & Uhlig 2008, "The utility of hotspot mapping for predicting spatial patterns of crime",
    Security Journal 21, 4-28, where it is the hit rate underlying the PAI). NaN when N is 0.
    """
    return _flagged(*_as_arrays(pred, obs), coverage)["hit_rate"]


def pai(pred, obs, coverage: float, area=None) -> float:
    """Predictive Accuracy Index, PAI = (n / N) / (a / A) (Chainey, Tompson & Uhlig 2008, Security Journal 21).

    n / N is the hit rate; a is the area of the flagged cells and A the study area. Without ``area`` every cell
    counts as one unit, so a / A is the flagged share of cells. NaN when N is 0.
    """
    return _flagged(*_as_arrays(pred, obs), coverage, area)["pai"]


def pei_star(pred, obs, coverage: float) -> float:
    """PEI*: hits of the prediction over the most hits any set of the same number of cells could have had.

    PEI* = n / n*, where n is the observed count in the k flagged cells and n* the observed count in the k cells
    with the most observed crime (the ideal set). Hunt (2016), "Do crime hot spots move? Exploring the effects of
    the modifiable areal unit problem and modifiable temporal unit problem on crime hot spot stability" (PhD
    thesis, American University), defined the Predictive Efficiency Index, a forecast's PAI over the best PAI
    attainable with the same flagged area; Joshi, Curtis-Ham, D'Ath & Searle (2021), "Considerations for developing predictive spatial
    models of crime and new methods for measuring their accuracy", ISPRS Int. J. Geo-Information 10(9), 597,
    proposed PEI*, which compares against the ideal set of the same number of cells as flagged. With the
    same number of cells the area term cancels. 1 is perfect; NaN when no crime was observed.
    """
    return _flagged(*_as_arrays(pred, obs), coverage)["pei_star"]


def poisson_deviance(pred, obs) -> float:
    """Mean Poisson deviance, D = (2 / n) * sum(y * log(y / mu) - (y - mu)), with y log y = 0 at y = 0.

    McCullagh & Nelder (1989), Generalized Linear Models, 2nd ed., section 2.3 (table 2.1). Predictions are clipped
    to ``EPS`` so a zero forecast for a cell that saw crime costs a large but finite penalty. Lower is better.
    """
    pred, obs = _as_arrays(pred, obs)
    mu = np.clip(pred, EPS, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylog = np.where(obs > 0, obs * np.log(obs / mu), 0.0)
    return float(np.mean(2.0 * (ylog - (obs - mu))))


def calibration(pred, obs) -> dict:
    """Calibration in the large and by decile of prediction.

    ``ratio`` = sum(pred) / sum(obs): 1 when the forecast total is right, above 1 when it over-predicts (NaN when
    no crime was observed). ``deciles`` is a frame with, per decile of predicted count (ranked, ties by cell order,
    so every decile holds a tenth of the cells), the mean predicted and mean observed count and their ratio: the
    table behind a reliability diagram.
    """
    pred, obs = _as_arrays(pred, obs)
    total = obs.sum()
    ratio = float(pred.sum() / total) if total > 0 else float("nan")
    order = np.argsort(pred, kind="stable")
    decile = np.empty(len(pred), dtype=int)
    decile[order] = (np.arange(len(pred)) * 10) // len(pred) + 1
    frame = pd.DataFrame({"decile": decile, "pred": pred, "obs": obs})
    deciles = frame.groupby("decile").agg(
        cells=("pred", "size"), mean_pred=("pred", "mean"), mean_obs=("obs", "mean")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        deciles["ratio"] = deciles["mean_pred"] / deciles["mean_obs"].where(deciles["mean_obs"] > 0)
    return {"ratio": ratio, "deciles": deciles.reset_index()}


def _pct(c: float) -> str:
    return f"{round(c * 100):d}"


def score(pred, obs, area=None, coverages=COVERAGES) -> dict[str, float]:
    """Every metric for one month, flat: ``pai_5``, ``pei_star_5``, ``hit_rate_5``, ..., ``deviance``,
    ``calibration``. ``area`` (km2 per cell) makes PAI area-weighted; the same cells and area for every method
    keep the scores comparable."""
    pred, obs = _as_arrays(pred, obs)
    out: dict[str, float] = {}
    for c in coverages:
        flagged = _flagged(pred, obs, c, area)
        out[f"hit_rate_{_pct(c)}"] = flagged["hit_rate"]
        out[f"pai_{_pct(c)}"] = flagged["pai"]
        out[f"pei_star_{_pct(c)}"] = flagged["pei_star"]
    out["deviance"] = poisson_deviance(pred, obs)
    total = obs.sum()
    out["calibration"] = float(pred.sum() / total) if total > 0 else float("nan")  # calibration()'s ratio
    return out


# Lower is better for these; every other score is higher-is-better.
LOWER_IS_BETTER = frozenset({"deviance"})
