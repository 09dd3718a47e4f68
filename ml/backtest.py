"""Rolling-origin backtest: forecast each of the last ``months`` months ``horizon`` months ahead, as if in real time.

A forecast of month t at horizon h is made with data up to month t - h (the last complete month then; h = 2 for a
force that publishes only through data.police.uk, some weeks after a month ends). Every method sees months
<= t - h only: baselines read that history directly (their forecast is flat over the horizon), and the model is
retrained on target months up to t - h, each with features read h months earlier (``default_train_months``).
Each forecast carries a 90% interval (``ml.intervals``) whose coverage is scored beside the ranking. All methods are scored on the same month and the same
cells (Tashman 2000, "Out-of-sample tests of forecasting accuracy: an analysis and review", International Journal
of Forecasting 16(4), 437-450, on rolling-origin evaluation).

Months the panel did not observe are masked: a month is an origin when any cell was observed in it, and it is scored
on its observed cells only, so a force-month that was not delivered is neither a hit nor a miss for anyone.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.backtest_cache import OriginCache, model_key, origin_key
from ml.baselines import BASELINES
from ml.features import Context, data_cut
from ml.intervals import LEVEL, baseline_dispersion, coverage, fit_dispersion, interval
from ml.metrics import LOWER_IS_BETTER, score, top_cells
from ml.model import TrainedModel, default_train_months, train
from ml.panel import Panel

MODEL = "model"
MIN_HISTORY = 3
# Scores again without the cells under an active intervention: a fall an intervention caused is not the forecast's
# skill. The headline ranking scores and the count deviance.
EXCL_INTERVENTIONS = "_excl_interventions"
# Kept with an origin's model row (and in the origin cache), not a score: the model's out-of-time dispersion there.
RESIDUAL = "residual_dispersion"
EXCL_METRICS = ("pei_star_5", "pai_5", "hit_rate_5", "deviance")


@dataclass
class BacktestResult:
    """Scores per method and month, their means, and the last origin's per-cell predictions."""

    group: str
    per_month: pd.DataFrame
    predictions: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    models: dict[str, TrainedModel] = field(default_factory=dict)
    # Origins whose scores were kept from an earlier run (see ml.backtest_cache): nothing they read had changed.
    reused_origins: list[str] = field(default_factory=list)
    horizon: int = 1
    # Per method, the negative binomial dispersion its intervals used at the last origin.
    dispersion: dict[str, float] = field(default_factory=dict)
    # The model's dispersion around the counts of the last origin's month, forecast out of time: what a model
    # trained on the months up to it expects of its own residuals (None without the model).
    residual_dispersion: float | None = None
    # The last origin's month when its model was the one an earlier run published as that month's forecast
    # (``keep_forecast_model``) rather than a new fit; None otherwise.
    reused_model: str | None = None
    # Per scored origin (month index), the model's residual dispersion there (None where not finite): the
    # dispersion given to the model of the origin ``horizon`` months later (``keep_next_origin_model``).
    origin_residuals: dict[int, float | None] = field(default_factory=dict)

    @property
    def summary(self) -> pd.DataFrame:
        """Mean of every metric per method over the backtest months (NaN months, with no crime, are skipped)."""
        return self.per_month.drop(columns=["month"]).groupby("method", sort=False).mean()

    def best_baseline(self, metric: str = "pei_star_5") -> str:
        """The baseline (not the model) with the best mean ``metric``; lower wins for deviance."""
        s = self.summary.drop(index=MODEL, errors="ignore")[metric].dropna()
        if s.empty:
            raise ValueError(f"no baseline has a {metric} score")
        return str(s.idxmin() if metric in LOWER_IS_BETTER else s.idxmax())

    def to_markdown(self, columns: list[str] | None = None, digits: int = 3) -> str:
        """The summary as a GitHub-flavoured markdown table (no extra dependency)."""
        s = self.summary
        cols = columns or [c for c in s.columns if c != "calibration"] + ["calibration"]
        lines = ["| method | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
        for method, row in s[cols].iterrows():
            cells = ["" if (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}" for v in row]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _resolve_methods(methods) -> dict[str, Callable | None]:
    names = list(BASELINES) + [MODEL] if methods is None else list(methods)
    unknown = [m for m in names if m != MODEL and m not in BASELINES]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(BASELINES) + [MODEL]}")
    return {m: (None if m == MODEL else BASELINES[m]) for m in names}


def backtest(
    panel: Panel,
    group: str,
    *,
    months: int = 12,
    context: Context | None = None,
    methods: list[str] | None = None,
    model_params: dict | None = None,
    progress: Callable[[str], None] | None = None,
    cache: OriginCache | None = None,
    feature_cache: dict | None = None,
    horizon: int = 1,
    intervened: np.ndarray | None = None,
) -> BacktestResult:
    """Score every method on each of the last ``months`` months of ``panel``, ``horizon`` months ahead.

    Needs ``months + 2 + horizon`` months of history so that the first forecast has three earlier months to learn
    from; raises ValueError saying how many are needed otherwise. ``progress`` receives one line per origin.

    Each target month is scored on the study area as of its origin: the cells with any crime in the months the
    forecast could read (a cell first seen later was not on anyone's map yet), observed in the scored month.
    Besides the ranking and count metrics, each method's 90% interval is scored: ``coverage_90`` is the share of
    observed counts inside it, ``width_90`` its mean width, ``coverage_90_busy`` the share among cells forecast at
    one or more (on quiet cells a whole-number interval is [0, 0] and covers more than 90% by construction). With ``cache``,
    an origin whose inputs are unchanged since an earlier run is read back rather than recomputed (the final origin
    is always computed, for its per-cell predictions). ``feature_cache`` (a caller-owned dict) keeps the feature
    rows of the last training window afterwards, for a ``forecast`` from the same panel. ``intervened`` (cells x
    months booleans: the cell lies in an intervention active that month) adds ``EXCL_METRICS`` scored without
    those cells, each suffixed ``EXCL_INTERVENTIONS``.
    """
    panel.group_counts(group)
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 month, got {horizon}")
    need = months + MIN_HISTORY + horizon - 1
    scorable = [t for t in panel.scored_months() if data_cut(t, horizon) >= MIN_HISTORY]
    if len(scorable) < months:
        raise ValueError(
            f"a {months}-month backtest at horizon {horizon} needs at least {need} months of history "
            f"({months} + {MIN_HISTORY} + {horizon - 1}); "
            f"the panel has {panel.n_months} ({panel.months[0]} to {panel.months[-1]}), "
            f"{len(scorable)} of them observed after the first {MIN_HISTORY + horizon - 1}"
        )
    if intervened is not None and np.shape(intervened) != (panel.n_cells, panel.n_months):
        raise ValueError(f"intervened must be (cells x months) = {(panel.n_cells, panel.n_months)}, "
                         f"not {np.shape(intervened)}")
    chosen = _resolve_methods(methods)
    counts = panel.counts[group]
    rows, seconds, models = [], dict.fromkeys(chosen, 0.0), {}
    feature_cache = {} if feature_cache is None else feature_cache
    last_preds: dict[str, np.ndarray] = {}
    dispersion: dict[str, float] = {}
    reused: list[str] = []
    reused_model: str | None = None
    # How far the flagged set moves between consecutive origins: Jaccard overlap of the top 5% of cells.
    prev_flags: dict[str, set] = {}
    origins = scorable[-months:]
    # Per origin, the model's dispersion around that month's counts, forecast out of time. The model of origin t
    # takes its intervals' dispersion from the residuals of the model of origin t - horizon (a month its features
    # may read) rather than from a second fit on held-out months; that origin, when it lies before the months
    # scored here, is read from the cache or fitted for its residuals alone. With no scorable month there (the
    # panel's first months), the model fits its dispersion on held-out months.
    residual: dict[int, float | None] = {}
    scorable_set = set(scorable)
    with_model = MODEL in chosen

    def prior_of(t: int) -> int | None:
        return t - horizon if with_model and t - horizon in scorable_set else None

    def key_of(t: int, known: np.ndarray) -> str | None:
        if not cache:
            return None
        key = origin_key(panel, group, t, known, context, list(chosen), model_params, horizon)
        salt = np.packbits(intervened[known, t]).tobytes() if intervened is not None else b""
        salt += b"dispersion from " + (b"the origin before" if prior_of(t) is not None else b"held-out months")
        return hashlib.blake2b(key.encode() + salt, digest_size=20).hexdigest()

    def residual_alone(t: int) -> float | None:
        """The residual dispersion of origin ``t``'s model, for an origin before the ones scored here."""
        known = panel.known_before(data_cut(t, horizon))
        key = key_of(t, known)
        # Kept as a scored origin of an earlier run, or as this residual alone.
        alone = hashlib.blake2b(key.encode() + b"residual alone", digest_size=20).hexdigest() if key else None
        for k in (key, alone) if key else ():
            hit = cache.get(group, k)
            value = next((r.get(RESIDUAL) for r in hit[0] if r["method"] == MODEL), None) if hit else None
            if value is not None and np.isfinite(value):
                return float(value)
        start = time.perf_counter()
        # Its own intervals are not wanted: no held-out fit for them (dispersion given as 0).
        model = train(panel, group, default_train_months(t, horizon=horizon), context, model_params,
                      feature_cache=feature_cache, cells=known, horizon=horizon, dispersion=0.0)
        scored = panel.observed_in(t)[known]
        value = fit_dispersion(model.predict(panel, t, context, feature_cache)[known][scored], counts[known, t][scored])
        seconds[MODEL] += time.perf_counter() - start
        if alone:
            cache.put(group, alone, [{"method": MODEL, RESIDUAL: value}], {MODEL: set()})
        return value

    for t in origins:
        known = panel.known_before(data_cut(t, horizon))
        prior = prior_of(t)
        if prior is not None and prior not in residual:
            residual[prior] = residual_alone(prior)
            # Its training window reaches back before this origin's: drop the feature rows only it read.
            _forget_before(feature_cache, min(default_train_months(t, horizon=horizon), default=t))
        # The final origin is always computed: its per-cell predictions are part of the result.
        key = key_of(t, known)
        hit = cache.get(group, key) if key and t != origins[-1] else None
        if hit is not None:
            origin_rows, origin_flags = hit
            reused.append(panel.months[t])
        else:
            given = residual.get(prior) if prior is not None else None
            # The final origin's model is the one a run before this one published as its forecast of month t,
            # when that was fitted on exactly what this origin reads: it is scored as published, not fitted again.
            stored = (cache.get_model(group, model_key(panel, group, t, known, context, model_params, horizon, given))
                      if cache and with_model and t == origins[-1] else None)
            if stored is not None:
                reused_model = panel.months[t]
            preds, alphas = _predict_origin(panel, group, t, known, chosen, context, model_params, feature_cache,
                                            seconds, models, horizon, dispersion=given, model=stored)
            scored = panel.observed_in(t)[known]
            observed = counts[known, t][scored]
            area = panel.area_km2[known][scored]
            scored_cells = panel.cells[known][scored]
            origin_rows, origin_flags = [], {}
            for name, pred in preds.items():
                origin_flags[name] = set(scored_cells[top_cells(pred[scored], 0.05)].tolist())
                lower, upper = interval(pred[scored], alphas[name], LEVEL)
                origin_rows.append({"method": name, "month": panel.months[t],
                                    **score(pred[scored], observed, area),
                                    "coverage_90": coverage(lower, upper, observed),
                                    # Where a whole-number interval is not [0, 0] by construction.
                                    "coverage_90_busy": coverage(*(a[busy] for a in (lower, upper, observed)))
                                    if (busy := pred[scored] >= 1).any() else float("nan"),
                                    "width_90": float(np.mean(upper - lower))})
                if intervened is not None:
                    origin_rows[-1].update(_excluding(pred[scored], observed, area, intervened[known, t][scored]))
                if name == MODEL:
                    origin_rows[-1][RESIDUAL] = fit_dispersion(pred[scored], observed)
                if t == origins[-1]:
                    last_preds[name] = pred[scored]
                    dispersion[name] = alphas[name]
            if cache:
                cache.put(group, key, origin_rows, origin_flags)
        residual[t] = None
        for row in origin_rows:
            value = row.pop(RESIDUAL, None)
            if row["method"] == MODEL and value is not None and np.isfinite(value):
                residual[t] = float(value)
        for row in origin_rows:
            name = row["method"]
            flags, before = origin_flags[name], prev_flags.get(name)
            drift = len(flags & before) / len(flags | before) if before else float("nan")
            prev_flags[name] = flags
            rows.append({**row, "flag_jaccard_5": drift})
        # Later origins train on later windows: drop the feature rows no later origin reads, so a national panel
        # holds about one training window of features at a time.
        _forget_before(feature_cache, min(default_train_months(t + 1, horizon=horizon), default=t))
        if progress is not None:
            how = "kept from an earlier run" if hit is not None else f"scored {len(chosen)} methods" + (
                " (the model as published by an earlier run)" if reused_model == panel.months[t] else "")
            progress(f"{group} {panel.months[t]} (h={horizon}): {how} on "
                     f"{int((panel.observed_in(t) & known).sum())} observed "
                     f"cells of the {int(known.sum())} known before it ({panel.n_cells} in all)")
    if cache:
        cache.prune(group)
    last = panel.observed_in(origins[-1]) & panel.known_before(data_cut(origins[-1], horizon))
    predictions = pd.DataFrame(
        {
            "h3_cell": panel.cells[last],
            "month": panel.months[origins[-1]],
            "observed": counts[last, origins[-1]],
            **last_preds,
        }
    )
    return BacktestResult(group, pd.DataFrame(rows), predictions, seconds, models, reused, horizon, dispersion,
                          residual.get(origins[-1]), reused_model, {t: residual.get(t) for t in origins})


def _forget_before(feature_cache: dict, oldest: int) -> None:
    """Drop the cached feature rows of target months before ``oldest``."""
    for key in [k for k in feature_cache if k[1] < oldest]:
        del feature_cache[key]


def _excluding(pred: np.ndarray, observed: np.ndarray, area: np.ndarray, under: np.ndarray) -> dict[str, float]:
    keep = ~under
    scores = score(pred[keep], observed[keep], area[keep]) if keep.any() else {}
    return {m + EXCL_INTERVENTIONS: scores.get(m, float("nan")) for m in EXCL_METRICS}


def _predict_origin(panel: Panel, group: str, t: int, known: np.ndarray, chosen: dict, context: Context | None,
                    model_params: dict | None, feature_cache: dict, seconds: dict, models: dict, horizon: int = 1,
                    dispersion: float | None = None,
                    model: TrainedModel | None = None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every method's prediction for month ``t`` at ``horizon`` on the cells ``known`` as of its origin (in cell
    order), and the dispersion of each method's intervals (the model's ``dispersion`` when given, see ``train``).

    The model trains on those cells only; the baselines run on the panel cut to them and to the months before
    t - horizon + 1, so cells first seen later, and any month after the origin, change nothing. ``model``, when
    given, is the model's fit for this origin already made (``keep_forecast_model``) and is not fitted again."""
    cut = data_cut(t, horizon)
    area = panel.subset(known, cut, [group]) if any(fn is not None for fn in chosen.values()) else None
    out, alphas = {}, {}
    for name, fn in chosen.items():
        start = time.perf_counter()
        if fn is None:
            if model is None:
                model = train(panel, group, default_train_months(t, horizon=horizon), context, model_params,
                              feature_cache=feature_cache, cells=known, horizon=horizon, dispersion=dispersion)
            out[name] = model.predict(panel, t, context, feature_cache)[known]
            alphas[name] = model.dispersion
            models[panel.months[t]] = model
        else:
            out[name] = fn(area, group, cut)
            alphas[name] = baseline_dispersion(fn, area, group, cut, horizon)
        seconds[name] += time.perf_counter() - start
    return out, alphas


@dataclass
class Forecast:
    """Predicted counts for one month beyond (or inside) the panel, with 90% intervals, and the model that made
    them."""

    month: str
    predictions: pd.DataFrame
    model: TrainedModel
    horizon: int = 1


def forecast(
    panel: Panel,
    group: str,
    target_month_index: int | None = None,
    context: Context | None = None,
    model: TrainedModel | None = None,
    model_params: dict | None = None,
    feature_cache: dict | None = None,
    horizon: int | None = None,
    dispersion: float | None = None,
) -> Forecast:
    """Forecast month ``target_month_index`` from the months before ``target - horizon + 1`` (default target:
    ``horizon`` months after the panel's last month).

    Without ``model`` one is trained on the target months up to the last one the forecast may read, on the cells
    known by then (as in the backtest); ``horizon`` defaults to the model's, else 1. The frame holds h3_cell, force,
    month, predicted_count, lower_90 and upper_90 and, for reference, the ewma baseline, for the study area as of
    the origin: cells with any crime in the months read (a cell first seen later is on no one's map yet).
    ``feature_cache`` may hold feature rows a ``backtest`` of the same panel left; ``dispersion``, for a model trained
    here, its intervals' dispersion when known already (a backtest's ``residual_dispersion``, see ``train``).
    """
    if horizon is None:
        horizon = model.horizon if model is not None else 1
    if model is not None and model.horizon != horizon:
        raise ValueError(f"model was trained for horizon {model.horizon}, not {horizon}")
    t = panel.n_months + horizon - 1 if target_month_index is None else target_month_index
    cut = data_cut(t, horizon)
    if not 1 <= cut <= panel.n_months:
        raise ValueError(f"target month index must be in {horizon}..{panel.n_months + horizon - 1} at horizon "
                         f"{horizon}, got {t}")
    known = panel.known_before(cut)
    if model is None:
        train_months = default_train_months(t, horizon=horizon)
        if not train_months:
            raise ValueError(f"the panel is too short to train a model at horizon {horizon}: it needs at least "
                             f"{horizon + 1} months")
        model = train(panel, group, train_months, context, model_params, feature_cache=feature_cache,
                      cells=known, horizon=horizon, dispersion=dispersion)
    elif model.group != group:
        raise ValueError(f"model was trained for {model.group!r}, not {group!r}")
    label = panel.month_label(t)
    pred = model.predict(panel, t, context, feature_cache)[known]
    lower, upper = interval(pred, model.dispersion, LEVEL)
    frame = pd.DataFrame(
        {
            "h3_cell": panel.cells[known],
            "force": panel.force[known],
            "month": label,
            "predicted_count": pred,
            "lower_90": lower,
            "upper_90": upper,
            "ewma_baseline": BASELINES["ewma"](panel, group, cut)[known],
        }
    )
    return Forecast(label, frame, model, horizon)


def keep_forecast_model(cache: OriginCache | None, panel: Panel, fc: Forecast, context: Context | None = None,
                        model_params: dict | None = None, dispersion: float | None = None) -> str | None:
    """Keep the model of a forecast beyond the panel (``forecast`` with the default target, ``model_params`` and
    ``dispersion`` as given to it), so that the backtest of a later run that observes its month scores this very
    model at that origin instead of fitting it again (``model_key``: only when nothing it was fitted on changed).
    Returns the key, or None without a cache."""
    if cache is None:
        return None
    t = panel.n_months + fc.horizon - 1
    known = panel.known_before(data_cut(t, fc.horizon))
    key = model_key(panel, fc.model.group, t, known, context, model_params, fc.horizon, dispersion)
    cache.put_model(fc.model.group, key, fc.model)
    return key


def keep_next_origin_model(cache: OriginCache | None, panel: Panel, group: str, result: BacktestResult,
                           context: Context | None = None, model_params: dict | None = None,
                           feature_cache: dict | None = None) -> str | None:
    """Make sure the model the next run's backtest scores at its last origin is kept: the model of month
    ``panel.n_months`` (the month after the panel's last) at the backtest's horizon, fitted on the months before
    its data cut. A run publishes that model as its forecast (``keep_forecast_model``) ``horizon`` months ahead,
    so in a month-by-month routine the run before this one kept it already and nothing is fitted here. After a
    first build of the history, or a month when the models did not run, it is missing: it is fitted here, once,
    so that the next month fits one model (its forecast) rather than two. At horizon 1 it is this run's forecast
    model. Returns the key, or None without a cache, at horizon 1, or with no scored origin to give the model its
    intervals' dispersion (the next backtest then fits it itself)."""
    h = result.horizon
    t = panel.n_months
    if cache is None or h < 2 or t - h not in result.origin_residuals:
        return None
    given = result.origin_residuals[t - h]
    known = panel.known_before(data_cut(t, h))
    key = model_key(panel, group, t, known, context, model_params, h, given)
    if not cache.has_model(group, key):
        model = train(panel, group, default_train_months(t, horizon=h), context, model_params,
                      feature_cache=feature_cache, cells=known, horizon=h, dispersion=given)
        cache.put_model(group, key, model)
    return key

