"""Rolling-origin backtest: forecast each of the last ``months`` months one month ahead, as if in real time.

At origin t every method sees months < t only: baselines read the history directly, and the model is retrained
on origin months up to t - 1 (``default_train_months``). All methods are scored on the same month and the same
cells (Tashman 2000, "Out-of-sample tests of forecasting accuracy: an analysis and review", International Journal
of Forecasting 16(4), 437-450, on rolling-origin evaluation).

Months the panel did not observe are masked: a month is an origin when any cell was observed in it, and it is scored
on its observed cells only, so a force-month that was not delivered is neither a hit nor a miss for anyone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.backtest_cache import OriginCache, origin_key
from ml.baselines import BASELINES
from ml.features import Context
from ml.metrics import LOWER_IS_BETTER, score, top_cells
from ml.model import TrainedModel, default_train_months, train
from ml.panel import Panel

MODEL = "model"
MIN_HISTORY = 3


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
) -> BacktestResult:
    """Score every method on each of the last ``months`` months of ``panel``, one month ahead.

    Needs ``months + 3`` months of history so that the first origin has three earlier months to learn from;
    raises ValueError saying how many are needed otherwise. ``progress`` receives one line per origin.

    Each origin is scored on the study area as of that origin: the cells with any crime before it (a cell first
    seen in the scored month or later was not on anyone's map yet), observed in the scored month. With ``cache``,
    an origin whose inputs are unchanged since an earlier run is read back rather than recomputed (the final origin
    is always computed, for its per-cell predictions). ``feature_cache`` (a caller-owned dict) keeps the feature
    rows of the last training window afterwards, for a ``forecast`` from the same panel.
    """
    panel.group_counts(group)
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    need = months + MIN_HISTORY
    scorable = [t for t in panel.scored_months() if t >= MIN_HISTORY]
    if len(scorable) < months:
        raise ValueError(
            f"a {months}-month backtest needs at least {need} months of history ({months} + {MIN_HISTORY}); "
            f"the panel has {panel.n_months} ({panel.months[0]} to {panel.months[-1]}), "
            f"{len(scorable)} of them observed after the first {MIN_HISTORY}"
        )
    chosen = _resolve_methods(methods)
    counts = panel.counts[group]
    rows, seconds, models = [], dict.fromkeys(chosen, 0.0), {}
    feature_cache = {} if feature_cache is None else feature_cache
    last_preds: dict[str, np.ndarray] = {}
    reused: list[str] = []
    # How far the flagged set moves between consecutive origins: Jaccard overlap of the top 5% of cells.
    prev_flags: dict[str, set] = {}
    origins = scorable[-months:]
    for t in origins:
        known = panel.known_before(t)
        # The final origin is always computed: its per-cell predictions are part of the result.
        key = origin_key(panel, group, t, known, context, list(chosen), model_params) if cache else None
        hit = cache.get(group, key) if key and t != origins[-1] else None
        if hit is not None:
            origin_rows, origin_flags = hit
            reused.append(panel.months[t])
        else:
            preds = _predict_origin(panel, group, t, known, chosen, context, model_params, feature_cache,
                                    seconds, models)
            scored = panel.observed_in(t)[known]
            observed = counts[known, t][scored]
            area = panel.area_km2[known][scored]
            scored_cells = panel.cells[known][scored]
            origin_rows, origin_flags = [], {}
            for name, pred in preds.items():
                origin_flags[name] = set(scored_cells[top_cells(pred[scored], 0.05)].tolist())
                origin_rows.append({"method": name, "month": panel.months[t],
                                    **score(pred[scored], observed, area)})
                if t == origins[-1]:
                    last_preds[name] = pred[scored]
            if cache:
                cache.put(group, key, origin_rows, origin_flags)
        for row in origin_rows:
            name = row["method"]
            flags, before = origin_flags[name], prev_flags.get(name)
            drift = len(flags & before) / len(flags | before) if before else float("nan")
            prev_flags[name] = flags
            rows.append({**row, "flag_jaccard_5": drift})
        # Later origins train on later windows: drop the feature rows no later origin reads, so a national panel
        # holds about one training window of features at a time.
        oldest = min(default_train_months(t + 1), default=t)
        for key_ in [k for k in feature_cache if k[1] < oldest]:
            del feature_cache[key_]
        if progress is not None:
            how = "kept from an earlier run" if hit is not None else f"scored {len(chosen)} methods"
            progress(f"{group} {panel.months[t]}: {how} on {int((panel.observed_in(t) & known).sum())} observed "
                     f"cells of the {int(known.sum())} known before it ({panel.n_cells} in all)")
    if cache:
        cache.prune(group)
    last = panel.observed_in(origins[-1]) & panel.known_before(origins[-1])
    predictions = pd.DataFrame(
        {
            "h3_cell": panel.cells[last],
            "month": panel.months[origins[-1]],
            "observed": counts[last, origins[-1]],
            **last_preds,
        }
    )
    return BacktestResult(group, pd.DataFrame(rows), predictions, seconds, models, reused)


def _predict_origin(panel: Panel, group: str, t: int, known: np.ndarray, chosen: dict, context: Context | None,
                    model_params: dict | None, feature_cache: dict, seconds: dict, models: dict
                    ) -> dict[str, np.ndarray]:
    """Every method's prediction for month ``t`` on the cells ``known`` before it (in cell order).

    The model trains on those cells only; the baselines run on the panel cut to them (and to months up to t), so
    cells first seen later, and any month after t, change nothing."""
    area = panel.subset(known, t + 1, [group]) if any(fn is not None for fn in chosen.values()) else None
    out = {}
    for name, fn in chosen.items():
        start = time.perf_counter()
        if fn is None:
            model = train(panel, group, default_train_months(t), context, model_params,
                          feature_cache=feature_cache, cells=known)
            out[name] = model.predict(panel, t, context, feature_cache)[known]
            models[panel.months[t]] = model
        else:
            out[name] = fn(area, group, t)
        seconds[name] += time.perf_counter() - start
    return out


@dataclass
class Forecast:
    """Predicted counts for one month beyond (or inside) the panel, and the model that made them."""

    month: str
    predictions: pd.DataFrame
    model: TrainedModel


def forecast(
    panel: Panel,
    group: str,
    target_month_index: int | None = None,
    context: Context | None = None,
    model: TrainedModel | None = None,
    model_params: dict | None = None,
    feature_cache: dict | None = None,
) -> Forecast:
    """Forecast month ``target_month_index`` (default ``panel.n_months``: the month after the last observed).

    Without ``model`` one is trained on the origin months before the target, on the cells known before it (as in
    the backtest). The frame holds h3_cell, force, month, predicted_count and, for reference, the ewma baseline.
    ``feature_cache`` may hold feature rows a ``backtest`` of the same panel left.
    """
    t = panel.n_months if target_month_index is None else target_month_index
    if not 1 <= t <= panel.n_months:
        raise ValueError(f"target month index must be in 1..{panel.n_months}, got {t}")
    if model is None:
        train_months = default_train_months(t)
        if not train_months:
            raise ValueError("the panel is too short to train a model: it needs at least 2 months")
        model = train(panel, group, train_months, context, model_params, feature_cache=feature_cache,
                      cells=panel.known_before(t))
    elif model.group != group:
        raise ValueError(f"model was trained for {model.group!r}, not {group!r}")
    label = panel.month_label(t)
    frame = pd.DataFrame(
        {
            "h3_cell": panel.cells,
            "force": panel.force,
            "month": label,
            "predicted_count": model.predict(panel, t, context, feature_cache),
            "ewma_baseline": BASELINES["ewma"](panel, group, t),
        }
    )
    return Forecast(label, frame, model)
