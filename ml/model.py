"""Gradient-boosted Poisson regression of next month's count per cell.

Rows are (cell, origin month m) pairs stacked over the training months: the target is the count in month m and the
features come from ``build_features(panel, group, m)``, which reads months ``< m`` only. The model is
``xgboost.XGBRegressor(objective="count:poisson")`` (log link, Poisson deviance loss; Chen & Guestrin 2016,
"XGBoost: a scalable tree boosting system", KDD), so predictions are expected counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.features import Context, build_features, data_cut
from ml.intervals import fit_dispersion
from ml.panel import Panel

DEFAULT_PARAMS = {
    "objective": "count:poisson",
    "n_estimators": 150,
    "learning_rate": 0.1,
    "max_depth": 5,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "tree_method": "hist",
    "max_bin": 128,
    # One thread unless `CRIMELAKE_TRAIN_THREADS` says otherwise (see ``train_threads``): `crimelake models` gives a
    # fit both cores when it trains one group at a time. XGBoost's hist fits are the same model on any number of
    # threads.
    "n_jobs": 1,
    "random_state": 0,
}
# Share of "quiet" zero rows kept for training (see ``training_rows``); 1.0 keeps every row.
QUIET_KEEP = 0.25
# Most rows one training sees: above it, rows with no crime in the target month are sampled down (and reweighted),
# then, if the rows with crime alone exceed it, every row alike. A national all-crime window (about 185,000 cells x
# 12 origins) holds about 1.6 million rows with crime; a force's panel stays well under the budget and is not sampled.
MAX_TRAIN_ROWS = 300_000
# Never keep fewer than this share of the zero-target rows, however large the panel.
MIN_ZERO_KEEP = 0.02
TRAIN_WINDOW = 12


def train_threads() -> int:
    """Threads per XGBoost fit: `CRIMELAKE_TRAIN_THREADS`, default 1. On the 2-core machines here one 300,000-row
    national fit took 14.4 s on one thread and 7.9 s on two; two groups training at once in two processes want one
    each."""
    raw = os.environ.get("CRIMELAKE_TRAIN_THREADS", "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"CRIMELAKE_TRAIN_THREADS must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def default_train_months(t: int, window: int = TRAIN_WINDOW, horizon: int = 1) -> list[int]:
    """Target months for a model that forecasts month ``t`` at ``horizon``: the ``window`` months up to the last one
    its data holds, t - horizon (from month ``horizon``, the first with any history at that horizon). Their targets
    end at t - horizon, so no month the forecast may not read is seen in training."""
    last = data_cut(t, horizon) - 1
    return list(range(max(horizon, last - window + 1), last + 1))


def cached_features(
    panel: Panel, group: str, t: int, context: Context | None, cache: dict | None, horizon: int = 1
) -> pd.DataFrame:
    """``build_features`` memoised in a caller-owned dict: a rolling backtest rebuilds each month's rows for every
    later origin otherwise. The caller owns the dict so a changed panel never meets stale rows."""
    if cache is None:
        return build_features(panel, group, t, context, horizon)
    key = (group, t, id(context), horizon)
    if key not in cache:
        cache[key] = build_features(panel, group, t, context, horizon)
    return cache[key]


def training_rows(
    panel: Panel,
    group: str,
    months: list[int],
    context: Context | None,
    quiet_keep: float = QUIET_KEEP,
    seed: int = 0,
    feature_cache: dict | None = None,
    max_rows: int | None = MAX_TRAIN_ROWS,
    cells: np.ndarray | None = None,
    horizon: int = 1,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Stacked features, targets and sample weights for the origin months ``months``.

    Most cells of a study area are empty almost every month. A row is "quiet" when the cell had no crime in the
    last 12 months (or as many as exist) and none in the target month; only ``quiet_keep`` of
    those are kept (a seeded random draw) with weight 1 / ``quiet_keep``, so the expected loss, and therefore the
    Poisson fit and its calibration, is unchanged while training sees fewer rows (18% of demo rows are
    quiet, so the cut there is modest; real forces have many more empty cells). Every row with crime in the
    target month is kept. Rows whose target month was not observed (the cell's force-month missing or partial) are
    left out: an undelivered month is not a month without crime.

    When more than ``max_rows`` rows remain, rows with no crime in the target month are kept with probability
    p = (max_rows - rows with crime) / zero rows (at least ``MIN_ZERO_KEEP``) and their weight divided by p, which
    again leaves the expected loss unchanged: the negative-sampling correction of Fithian & Hastie (2014), "Local
    case-control sampling", Annals of Statistics 42(5), with the weights rather than an offset. If the rows with
    crime alone exceed ``max_rows``, all rows left are thinned alike to about ``max_rows`` (weights divided by the
    keep probability), so a fit's cost is bounded at any scale.

    ``cells`` (a boolean mask) limits the rows to those cells, for example the study area as of a backtest origin.
    """
    counts = panel.group_counts(group)
    if not months:
        raise ValueError("no training months given")
    bad = [m for m in months if not 1 <= data_cut(m, horizon) <= m < panel.n_months]
    if bad:
        raise ValueError(f"training months must have a target and history ({horizon} <= m < {panel.n_months} "
                         f"at horizon {horizon}): {bad}")
    rng = np.random.default_rng(seed)
    # Rows are chosen first from the targets and one feature column, then gathered once: the stacked features of a
    # national window (millions of rows) never exist in full, only the rows kept.
    cache = {} if feature_cache is None else feature_cache
    where = np.flatnonzero(cells) if cells is not None else np.arange(panel.n_cells)
    chosen, targets, weights = [], [], []
    for m in months:
        mean_12 = cached_features(panel, group, m, context, cache, horizon)["mean_12"].to_numpy()[where]
        y = counts[where, m]
        quiet = (mean_12 == 0) & (y == 0)
        keep = (~quiet | (rng.random(len(y)) < quiet_keep)) & ~np.isnan(y)
        w = np.where(quiet, 1.0 / quiet_keep, 1.0)
        chosen.append(where[keep])
        targets.append(y[keep])
        weights.append(w[keep])
    y, w = np.concatenate(targets), np.concatenate(weights)
    keep = np.ones(len(y), dtype=bool)
    if max_rows is not None and len(y) > max_rows:
        zero = y == 0
        p = max((max_rows - (~zero).sum()) / max(zero.sum(), 1), MIN_ZERO_KEEP)
        if p < 1:
            keep = ~zero | (rng.random(len(y)) < p)
            w = np.where(zero, w / p, w)
        # Where the rows with crime alone exceed the budget (a national all-crime window holds well over a million),
        # every row left is kept with the same probability and its weight divided by it: the expected loss is still
        # unchanged, and a fit costs the same whatever the size of the study area.
        if (~zero).sum() > max_rows:
            q = max_rows / keep.sum()
            keep &= rng.random(len(y)) < q
            w = w / q
    bounds = np.cumsum([0, *(len(c) for c in chosen)])
    x = pd.concat(
        [cached_features(panel, group, m, context, cache, horizon).iloc[rows[keep[a:b]]]
         for m, rows, a, b in zip(months, chosen, bounds[:-1], bounds[1:], strict=True)],
        ignore_index=True,
    )
    return x, y[keep], w[keep]


@dataclass
class TrainedModel:
    """A fitted model with what is needed to use and describe it."""

    regressor: xgb.XGBRegressor
    group: str
    feature_names: list[str]
    params: dict
    train_months: list[str]
    n_rows: int
    uses_context: bool
    extra: dict = field(default_factory=dict)
    # Months between the last month the features read and the target (see ml.features).
    horizon: int = 1
    # Negative binomial dispersion of the counts around the predictions (ml.intervals): 0 is Poisson.
    dispersion: float = 0.0

    def predict(
        self, panel: Panel, t: int, context: Context | None = None, feature_cache: dict | None = None
    ) -> np.ndarray:
        """Expected count per cell (``panel.cells`` order) for month index ``t``, from months ``<= t - horizon``."""
        if self.uses_context and context is None:
            raise ValueError("this model was trained with context features; pass the same kind of context")
        x = cached_features(panel, self.group, t, context, feature_cache, self.horizon).reindex(
            columns=self.feature_names)
        return self.regressor.predict(x).astype(float)

    def save(self) -> tuple[bytes, dict]:
        """The booster (XGBoost's UBJSON, exact) and the rest of the model, for ``load``."""
        raw = bytes(self.regressor.get_booster().save_raw(raw_format="ubj"))
        return raw, {"group": self.group, "feature_names": self.feature_names, "params": self.params,
                     "train_months": self.train_months, "n_rows": self.n_rows, "uses_context": self.uses_context,
                     "extra": self.extra, "horizon": self.horizon, "dispersion": self.dispersion}

    @classmethod
    def load(cls, raw: bytes, described: dict) -> TrainedModel:
        """The model ``save`` gave: its booster from ``raw``, the rest from ``described``."""
        reg = xgb.XGBRegressor(**described["params"])
        reg.load_model(bytearray(raw))
        return cls(regressor=reg, **described)

    def feature_importance(self) -> dict[str, float]:
        """XGBoost "gain" importance: mean loss reduction of the splits on each feature (features never split
        on get 0), largest first."""
        gain = self.regressor.get_booster().get_score(importance_type="gain")
        out = {name: float(gain.get(name, 0.0)) for name in self.feature_names}
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# Training months held out, at the end of the window, to fit the interval dispersion on out-of-time residuals.
HOLDOUT_MONTHS = 2


def _holdout_dispersion(panel: Panel, group: str, months: list[int], context: Context | None, params: dict,
                        quiet_keep: float, feature_cache: dict | None, cells: np.ndarray | None,
                        horizon: int) -> float | None:
    """The negative binomial dispersion of the last ``HOLDOUT_MONTHS`` training months around the forecasts of a
    model fitted, with the same settings, on the months before them: residuals the model did not see, as the
    forecast's will be. Residuals of the rows a model was fitted on are too small (boosted trees fit the noise of
    busy cells) and give intervals that cover far less than they claim. None when the window is too short."""
    if len(months) < HOLDOUT_MONTHS + 2:
        return None
    seed = int(params["random_state"])
    early, late = months[:-HOLDOUT_MONTHS], months[-HOLDOUT_MONTHS:]
    x, y, w = training_rows(panel, group, early, context, quiet_keep, seed, feature_cache, cells=cells,
                            horizon=horizon)
    if len(y) == 0 or y.sum() <= 0:
        return None
    reg = xgb.XGBRegressor(**params)
    reg.fit(x, y, sample_weight=w)
    xh, yh, wh = training_rows(panel, group, late, context, quiet_keep, seed, feature_cache, cells=cells,
                               horizon=horizon)
    return fit_dispersion(reg.predict(xh.reindex(columns=x.columns)).astype(float), yh, wh)


def train(
    panel: Panel,
    group: str,
    train_months: list[int],
    context: Context | None = None,
    params: dict | None = None,
    quiet_keep: float = QUIET_KEEP,
    feature_cache: dict | None = None,
    cells: np.ndarray | None = None,
    horizon: int = 1,
    dispersion: float | None = None,
) -> TrainedModel:
    """Fit the Poisson XGBoost model on origin months ``train_months`` (month indices; targets are those months).

    Deterministic: fixed ``random_state``, one thread and a seeded quiet-row draw give the same model for the
    same inputs. Quiet zero rows are subsampled (``quiet_keep``, reweighted; see ``training_rows``); ``cells``
    limits training to those cells. Each target month ``m`` reads features up to ``m - horizon``. The dispersion for
    prediction intervals is fitted on residuals out of time: given as ``dispersion`` when the caller has such residuals
    already (a backtest's earlier origin, whose target month the features of this model may read), else fitted on
    held-out months with a second fit (see ``_holdout_dispersion``). On the demo
    panel (12,237 cells, 12 origin months, about 129,000 rows after subsampling) training takes about 2 s.
    """
    merged = {**DEFAULT_PARAMS, "n_jobs": train_threads(), **(params or {})}
    x, y, w = training_rows(
        panel, group, list(train_months), context, quiet_keep, int(merged["random_state"]), feature_cache,
        cells=cells, horizon=horizon,
    )
    if len(y) == 0 or y.sum() <= 0:
        raise ValueError(f"no {group} incidents in the training months: nothing to learn from")
    reg = xgb.XGBRegressor(**merged)
    reg.fit(x, y, sample_weight=w)
    if dispersion is None:
        dispersion = _holdout_dispersion(panel, group, list(train_months), context, merged, quiet_keep,
                                         feature_cache, cells, horizon)
    if dispersion is None:
        dispersion = fit_dispersion(reg.predict(x).astype(float), y, w)
    return TrainedModel(
        regressor=reg,
        group=group,
        feature_names=list(x.columns),
        params=merged,
        train_months=[panel.months[m] for m in train_months],
        n_rows=len(y),
        uses_context=context is not None,
        extra={"quiet_keep": quiet_keep},
        horizon=horizon,
        dispersion=dispersion,
    )
