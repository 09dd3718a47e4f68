"""Forecasts h months ahead of the last complete month: features, training months, the backtest, its cache key and
the production forecast read nothing after month t - h."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.backtest import backtest, forecast
from ml.backtest_cache import origin_key
from ml.features import Context, build_features
from ml.model import default_train_months
from tests.panel_factories import disk, gold_frames, make_panel


def _panel(n_months: int = 20, seed: int = 0):
    cells = disk(3)
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.8, 1.5, size=(len(cells), 1))
    counts = {g: rng.poisson(rate * s, size=(len(cells), n_months)).astype(float)
              for g, s in (("all_crime", 1.0), ("asb", 0.6), ("violence", 0.3))}
    return counts, cells


def _context(cells, n_months):
    fct, dim = gold_frames(_panel(n_months)[0], cells)
    months = sorted(fct["month"].unique())
    rng = np.random.default_rng(1)
    stop = pd.DataFrame([(c, m, int(rng.integers(0, 3)), 0, 0) for c in cells for m in months],
                        columns=["h3_cell", "month", "searches", "searches_for_weapons", "arrests"])
    return stop, dim


def test_features_at_horizon_2_ignore_the_month_before_the_target():
    counts, cells = _panel()
    stop, dim = _context(cells, 20)
    t = 15
    base = make_panel(counts, cells)
    changed = {g: m.copy() for g, m in counts.items()}
    for m in changed.values():
        m[:, t - 1] += 7  # month t - 1 is not yet published when month t is forecast two ahead
    other = make_panel(changed, cells)
    stop2 = stop.copy()
    stop2.loc[stop2["month"] == base.months[t - 1], "searches"] += 5
    ctx1 = Context.from_frames(stop_search=stop, cells=dim)
    ctx2 = Context.from_frames(stop_search=stop2, cells=dim)
    f2 = build_features(base, "all_crime", t, ctx1, horizon=2)
    pd.testing.assert_frame_equal(f2, build_features(other, "all_crime", t, ctx2, horizon=2))
    # At horizon 1 the same change does reach the features: the comparison above can fail.
    assert not build_features(base, "all_crime", t, ctx1).equals(build_features(other, "all_crime", t, ctx2))
    # The history is the one of the forecast made a month earlier; only the calendar is the target's.
    f1_prev = build_features(base, "all_crime", t - 1, ctx1, horizon=1)
    history = [c for c in f2.columns if not c.startswith("month_")]
    pd.testing.assert_frame_equal(f2[history], f1_prev[history])
    assert not np.allclose(f2["month_sin"], f1_prev["month_sin"])


def test_training_targets_end_h_months_before_the_forecast():
    assert default_train_months(20) == list(range(8, 20))
    assert default_train_months(20, horizon=2) == list(range(7, 19))
    assert default_train_months(4, horizon=2) == [2]
    assert default_train_months(3, horizon=2) == []
    with pytest.raises(ValueError, match="horizon"):
        build_features(make_panel(*_panel(6)), "all_crime", 4, horizon=0)


def test_backtest_at_horizon_2_does_not_see_the_month_between_origin_and_target():
    counts, cells = _panel(18)
    methods = ["model", "ewma", "kde", "last_month"]
    base = backtest(make_panel(counts, cells), "all_crime", months=4, methods=methods, horizon=2)
    last = base.per_month["month"].max()
    changed = {g: m.copy() for g, m in counts.items()}
    rng = np.random.default_rng(5)
    for m in changed.values():
        m[:, -2] = rng.poisson(3.0, size=len(cells))
    again = backtest(make_panel(changed, cells), "all_crime", months=4, methods=methods, horizon=2)
    a = base.per_month[base.per_month["month"] == last].reset_index(drop=True)
    b = again.per_month[again.per_month["month"] == last].reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns="flag_jaccard_5"), b.drop(columns="flag_jaccard_5"))
    assert base.horizon == 2 and set(base.dispersion) == set(methods)
    # The model trained for the last target month saw targets up to two months before it.
    model = base.models[last]
    assert model.horizon == 2 and model.train_months[-1] == make_panel(counts, cells).months[-3]
    # One month ahead, that month is read and the last month's scores move.
    h1 = backtest(make_panel(counts, cells), "all_crime", months=4, methods=methods)
    h1b = backtest(make_panel(changed, cells), "all_crime", months=4, methods=methods)
    s1 = h1.per_month[h1.per_month["month"] == last]["pei_star_5"].to_numpy()
    s2 = h1b.per_month[h1b.per_month["month"] == last]["pei_star_5"].to_numpy()
    assert not np.allclose(s1, s2)


def test_backtest_needs_more_history_at_a_longer_horizon():
    counts, cells = _panel(8)
    panel = make_panel(counts, cells)
    backtest(panel, "all_crime", months=5, methods=["ewma"], horizon=1)
    with pytest.raises(ValueError, match=r"5-month backtest at horizon 2 needs at least 9 months"):
        backtest(panel, "all_crime", months=5, methods=["ewma"], horizon=2)


def test_cache_key_includes_the_horizon():
    counts, cells = _panel(10)
    panel = make_panel(counts, cells)
    known = panel.known_before(7)
    k1 = origin_key(panel, "all_crime", 8, known, None, ["ewma"], None, 1)
    k2 = origin_key(panel, "all_crime", 8, known, None, ["ewma"], None, 2)
    assert k1 != k2
    assert k2 == origin_key(panel, "all_crime", 8, known, None, ["ewma"], None, 2)


def test_forecast_targets_h_months_after_the_last_month():
    counts, cells = _panel(14)
    panel = make_panel(counts, cells)
    f2 = forecast(panel, "all_crime", horizon=2)
    assert f2.month == panel.month_label(panel.n_months + 1) and f2.horizon == 2
    assert f2.model.horizon == 2 and f2.model.train_months[-1] == panel.months[-1]
    assert {"lower_90", "upper_90"} <= set(f2.predictions.columns)
    f1 = forecast(panel, "all_crime")
    assert f1.month == panel.month_label(panel.n_months) and f1.model.train_months[-1] == panel.months[-1]
    with pytest.raises(ValueError, match="horizon 1, not 2"):
        forecast(panel, "all_crime", model=f1.model, horizon=2)
