"""90% intervals: the dispersion is recovered from simulated counts, the interval covers what it claims on data drawn
from a known Poisson or negative binomial, and the backtest and predictions carry them."""

from __future__ import annotations

import numpy as np
import pytest

from ml.backtest import backtest
from ml.intervals import coverage, fit_dispersion, interval
from ml.predictions import ModelRef, build
from tests.panel_factories import disk, make_panel


def _rates(n: int, rng) -> np.ndarray:
    # Skewed like cell rates: most cells quiet, a few busy.
    return rng.gamma(0.7, 2.0, size=n)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_dispersion_is_recovered_and_the_interval_covers_90_percent(alpha):
    rng = np.random.default_rng(7)
    mu = _rates(60_000, rng)
    lam = mu * (rng.gamma(1 / alpha, alpha, size=len(mu)) if alpha > 0 else 1.0)
    y = rng.poisson(lam)
    fitted = fit_dispersion(mu, y)
    assert fitted == pytest.approx(alpha, abs=0.05 + 0.1 * alpha)
    # Fresh draws from the same distribution fall inside the fitted interval about 90% of the time (a little more:
    # the counts are whole numbers and both ends are included).
    lam2 = mu * (rng.gamma(1 / alpha, alpha, size=len(mu)) if alpha > 0 else 1.0)
    lower, upper = interval(mu, fitted)
    share = coverage(lower, upper, rng.poisson(lam2))
    assert 0.9 <= share <= 0.985
    # Busy cells, where whole numbers matter least, sit closer to the nominal level.
    busy = mu > 5
    assert 0.89 <= coverage(lower[busy], upper[busy], rng.poisson(lam2[busy])) <= 0.965


def test_a_poisson_interval_on_overdispersed_counts_undercovers():
    rng = np.random.default_rng(3)
    mu = _rates(40_000, rng) + 2.0
    y = rng.poisson(mu * rng.gamma(1.0, 1.0, size=len(mu)))  # alpha = 1
    lower, upper = interval(mu, 0.0)
    assert coverage(lower, upper, y) < 0.8
    lower, upper = interval(mu, fit_dispersion(mu, y))
    assert coverage(lower, upper, y) >= 0.89


def test_interval_shape_and_bad_input():
    lower, upper = interval(np.array([0.0, 0.01, 1.0, 20.0]), 0.5)
    assert (lower <= upper).all() and lower[0] == upper[0] == 0 and upper[-1] > 30
    assert (lower == np.floor(lower)).all()
    assert coverage([0, 1], [1, 2], [np.nan, 3]) == 0.0
    assert np.isnan(coverage([0], [1], [np.nan]))
    with pytest.raises(ValueError, match="level"):
        interval([1.0], 0.1, level=1.5)
    with pytest.raises(ValueError, match="dispersion"):
        interval([1.0], -0.1)
    with pytest.raises(ValueError, match="one length"):
        fit_dispersion([1.0, 2.0], [1.0])
    # Under-dispersed counts are Poisson, not a negative dispersion.
    assert fit_dispersion(np.full(100, 3.0), np.full(100, 3.0)) == 0.0


def test_backtest_reports_interval_coverage_per_method():
    cells = disk(4)
    rng = np.random.default_rng(0)
    rate = rng.gamma(0.6, 2.0, size=(len(cells), 1))
    counts = {"all_crime": rng.poisson(rate * rng.gamma(2.0, 0.5, size=(len(cells), 18))).astype(float)}
    result = backtest(make_panel(counts, cells), "all_crime", months=6, methods=["model", "ewma", "rolling_12"])
    s = result.summary
    assert {"coverage_90", "coverage_90_busy", "width_90"} <= set(s.columns)
    assert ((s["coverage_90_busy"] > 0.5) & (s["coverage_90_busy"] <= 1)).all()
    assert ((s["coverage_90"] > 0.5) & (s["coverage_90"] <= 1)).all()
    # Counts here are overdispersed around any fixed rate: every method found a positive dispersion.
    assert all(a > 0 for a in result.dispersion.values())


def test_predictions_carry_the_interval_and_horizon():
    cells = np.array(disk(1))
    pred = np.linspace(0.1, 3.0, len(cells))
    lower, upper = interval(pred, 0.2)
    frame = build(cells, np.array(["f"] * len(cells)), pred, group="asb", target_month="2024-02",
                  model=ModelRef("m", "1", None, "run"), feature_tables={}, data_months=("2023-01", "2023-12"),
                  lower=lower, upper=upper, horizon=2)
    assert (frame["lower_90"] <= frame["upper_90"]).all() and (frame["horizon"] == 2).all()
    np.testing.assert_array_equal(frame["upper_90"], upper)


@pytest.mark.parametrize("horizon", [1, 2])
def test_each_origin_takes_its_dispersion_from_the_residuals_of_the_origin_its_features_may_read(horizon, tmp_path):
    from ml import model as model_module
    from ml.backtest import forecast
    from ml.backtest_cache import OriginCache

    cells = disk(4)
    rng = np.random.default_rng(5)
    rate = rng.gamma(0.6, 2.0, size=(len(cells), 1))
    counts = {"all_crime": rng.poisson(rate * rng.gamma(2.0, 0.5, size=(len(cells), 20))).astype(float)}
    panel = make_panel(counts, cells)
    # The panel's first scorable months: min_history + horizon - 1 months of history before them.
    short = make_panel({g: m[:, :5 + 3 + horizon - 1] for g, m in counts.items()}, cells)
    fits = []
    real = model_module._holdout_dispersion
    model_module._holdout_dispersion = lambda *a, **k: fits.append(1) or real(*a, **k)
    try:
        result = backtest(panel, "all_crime", months=5, methods=["model"], horizon=horizon)
        assert fits == []  # every origin had a scorable month `horizon` months before it
        backtest(short, "all_crime", months=5, methods=["model"], horizon=horizon)
    finally:
        model_module._holdout_dispersion = real
    # On the shortest panel the first `horizon` origins have none: they fit their dispersion on held-out months.
    assert len(fits) == horizon
    origins = [list(panel.months).index(m) for m in result.per_month["month"]]
    models = result.models
    for t in origins[horizon:]:
        prior = t - horizon
        known = panel.known_before(prior - horizon + 1)
        observed = panel.observed_in(prior)[known]
        mu = models[panel.months[prior]].predict(panel, prior)[known][observed]
        expected = fit_dispersion(mu, panel.counts["all_crime"][known, prior][observed])
        assert models[panel.months[t]].dispersion == pytest.approx(expected)
    last = origins[-1]
    known = panel.known_before(last - horizon + 1)
    observed = panel.observed_in(last)[known]
    mu = models[panel.months[last]].predict(panel, last)[known][observed]
    assert result.residual_dispersion == pytest.approx(
        fit_dispersion(mu, panel.counts["all_crime"][known, last][observed]))
    assert forecast(panel, "all_crime", horizon=horizon,
                    dispersion=result.residual_dispersion).model.dispersion == result.residual_dispersion
    # Kept in the origin cache: a rerun reading every origin but the last back gives the same intervals.
    cache = OriginCache(tmp_path / "cache")
    first = backtest(panel, "all_crime", months=5, methods=["model"], horizon=horizon, cache=cache)
    import ml.backtest as backtest_module

    trained = []
    real_train = backtest_module.train
    backtest_module.train = lambda *a, **k: trained.append(1) or real_train(*a, **k)
    try:
        again = backtest(panel, "all_crime", months=5, methods=["model"], horizon=horizon, cache=cache)
    finally:
        backtest_module.train = real_train
    assert len(again.reused_origins) == 4
    # Only the last origin is fitted again: the residuals of the origins before the window were kept too.
    assert len(trained) == 1
    assert again.residual_dispersion == pytest.approx(first.residual_dispersion)
    assert again.dispersion == pytest.approx(first.dispersion)
    import pandas as pd

    pd.testing.assert_frame_equal(again.per_month, first.per_month)


@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_quantiles_of_repeated_rates_are_those_of_each_rate(alpha):
    from scipy import stats

    rng = np.random.default_rng(11)
    mu = np.concatenate([rng.integers(0, 12, 5_000) / 3.0, rng.gamma(0.7, 2.0, 500), [0.0, 1e-12]])
    lower, upper = interval(mu, alpha)
    m = np.clip(mu, 1e-9, None)
    if alpha == 0:
        expected = stats.poisson.ppf(0.05, m), stats.poisson.ppf(0.95, m)
    else:
        expected = stats.nbinom.ppf(0.05, 1 / alpha, (1 / alpha) / (1 / alpha + m)), \
            stats.nbinom.ppf(0.95, 1 / alpha, (1 / alpha) / (1 / alpha + m))
    np.testing.assert_array_equal(lower, expected[0])
    np.testing.assert_array_equal(upper, expected[1])
    assert interval(np.array([]), alpha)[0].shape == (0,)


@pytest.mark.parametrize("alpha", [0.0, 0.35, 3.0])
def test_quantiles_of_many_distinct_rates_equal_scipys_at_every_rate(alpha):
    from scipy import stats

    from ml.intervals import monotone_map

    rng = np.random.default_rng(5)
    mu = np.concatenate([rng.gamma(0.4, 3.0, 40_000), rng.uniform(0, 200, 2_000), [1e-12, 0.0, 500.0]])
    lower, upper = interval(mu, alpha)
    m = np.clip(mu, 1e-9, None)
    for p, got in ((0.05, lower), (0.95, upper)):
        want = stats.poisson.ppf(p, m) if alpha == 0 else stats.nbinom.ppf(p, 1 / alpha, (1 / alpha) / (1 / alpha + m))
        np.testing.assert_array_equal(got, want)
    # Evaluated at few points: a step function over many points is found from a few hundred evaluations.
    calls = []

    def steps(x):
        calls.append(len(x))
        return np.floor(x / 10.0)

    x = np.linspace(0, 100, 100_000)
    np.testing.assert_array_equal(monotone_map(steps, x), np.floor(x / 10.0))
    assert sum(calls) < 1_000
