"""Backtest origins kept between runs: reused only when nothing they read changed, and then equal to a fresh run."""

import h3
import numpy as np
import pandas as pd
import pandas.testing as pdt

from ml.backtest import backtest
from ml.backtest_cache import OriginCache
from ml.panel import Panel
from tests.panel_factories import CENTRE, disk, gold_frames

FAST = {"n_estimators": 20}
NEW_CELL = sorted(h3.grid_ring(CENTRE, 5))[0]  # outside the disk: first seen in the last month


def frames(n_months: int, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sparse counts for a disk of cells, two groups, ``n_months`` months (the same first months for any length)."""
    rng = np.random.default_rng(seed)
    cells = disk(3)
    full = {g: rng.poisson(np.linspace(0.3, 3, len(cells))[:, None], (len(cells), 20)).astype(float)
            for g in ("all_crime", "asb")}
    counts, dim = gold_frames({g: m[:, :n_months] for g, m in full.items()}, cells)
    return counts[counts["incident_count"] > 0].reset_index(drop=True), dim


def with_new_cell(counts: pd.DataFrame, dim: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same data plus a cell whose first crime is in the last month (dim_cells learns it then)."""
    last = counts["month"].max()
    new_counts, new_dim = gold_frames({"all_crime": np.array([[7.0]])}, [NEW_CELL], start=last)
    return (pd.concat([counts, new_counts[new_counts["incident_count"] > 0]], ignore_index=True),
            pd.concat([dim, new_dim], ignore_index=True))


def run(counts, dim, cache=None, months=4):
    return backtest(Panel.from_frames(counts, dim), "all_crime", months=months, model_params=FAST, cache=cache)


def test_a_rerun_reuses_every_origin_but_the_last_and_scores_the_same(tmp_path):
    counts, dim = frames(12)
    cache = OriginCache(tmp_path)
    first = run(counts, dim, cache)
    assert first.reused_origins == []
    again = run(counts, dim, cache)
    months = sorted(first.per_month["month"].unique())
    assert again.reused_origins == months[:-1]
    pdt.assert_frame_equal(again.per_month, first.per_month)


def test_a_new_month_costs_one_origin_and_matches_a_fresh_backtest(tmp_path):
    counts, dim = frames(12)
    cache = OriginCache(tmp_path)
    run(counts, dim, cache)
    # Month 13 arrives, with a cell never seen before: the earlier origins' study areas do not include it.
    counts13, dim13 = with_new_cell(*frames(13))
    incremental = run(counts13, dim13, cache)
    fresh = run(counts13, dim13)
    months = sorted(fresh.per_month["month"].unique())
    assert incremental.reused_origins == months[:-1]
    pdt.assert_frame_equal(incremental.per_month, fresh.per_month)
    # The new cell is in the panel but in no origin's study area (it had no crime before the last month).
    assert NEW_CELL not in set(fresh.predictions["h3_cell"])


def test_a_late_correction_recomputes_the_origins_that_read_it(tmp_path):
    counts, dim = frames(12)
    cache = OriginCache(tmp_path)
    first = run(counts, dim, cache)
    months = sorted(first.per_month["month"].unique())
    # A force resubmits the second backtest month with one more crime in one cell.
    fixed = counts.copy()
    row = fixed.index[(fixed["month"] == months[1]) & (fixed["forecast_group"] == "all_crime")][0]
    fixed.loc[row, "incident_count"] += 1
    corrected = run(fixed, dim, cache)
    assert corrected.reused_origins == months[:1]
    pdt.assert_frame_equal(corrected.per_month, run(fixed, dim).per_month)


def test_changed_parameters_or_a_damaged_entry_recompute(tmp_path):
    counts, dim = frames(12)
    cache = OriginCache(tmp_path)
    run(counts, dim, cache)
    other = backtest(Panel.from_frames(counts, dim), "all_crime", months=4, model_params={"n_estimators": 21},
                     cache=cache)
    assert other.reused_origins == []
    for entry in (tmp_path / "all_crime").glob("*.parquet"):
        entry.write_bytes(b"not parquet")
    assert run(counts, dim, cache).reused_origins == []


def test_context_is_part_of_the_key(tmp_path):
    from ml.features import Context

    counts, dim = frames(12)
    ss = counts[counts["forecast_group"] == "asb"][["h3_cell", "month"]].assign(searches=1, searches_for_weapons=0,
                                                                                  arrests=0)

    def go(stop_search):
        context = Context.from_frames(stop_search=stop_search, cells=dim)
        return backtest(Panel.from_frames(counts, dim), "all_crime", months=4, model_params=FAST, context=context,
                        cache=OriginCache(tmp_path))

    first = go(ss)
    months = sorted(first.per_month["month"].unique())
    assert go(ss).reused_origins == months[:-1]
    # A late stop-and-search record in the second backtest month: origins after it read it, the first two do not.
    late = ss.copy()
    late.loc[late.index[late["month"] == months[1]][0], "searches"] = 5
    assert go(late).reused_origins == months[:2]


def test_an_lsoa_first_named_by_a_new_month_is_not_read_before_it(tmp_path):
    from ml.features import Context

    # A cell first seen in a force's own export (no LSOA) until month 13, whose data.police.uk rows name one.
    counts, dim = frames(12)
    late_cell = dim["h3_cell"].iloc[0]
    dim = dim.assign(lsoa_month=dim["first_month"])
    dim.loc[0, ["lsoa_code", "lsoa_month"]] = None
    counts13, dim13 = frames(13)
    dim13 = dim13.assign(lsoa_month=dim13["first_month"])
    dim13.loc[0, ["lsoa_code", "lsoa_month"]] = ["E01000009", dim13["last_month"].iloc[0]]
    quarters = ["2021-Q4", "2022-Q1", "2022-Q2", "2022-Q3", "2022-Q4"]
    indicators = pd.DataFrame([(code, q, 10.0 + i) for code in ["E01000000", "E01000001", "E01000002", "E01000009"]
                               for i, q in enumerate(quarters)],
                              columns=["lsoa_code", "quarter", "council_reports"])

    def go(c, d):
        context = Context.from_frames(indicators=indicators, cells=d)
        return backtest(Panel.from_frames(c, d), "all_crime", months=4, model_params=FAST, context=context,
                        cache=OriginCache(tmp_path)), context

    go(counts, dim)
    second, context = go(counts13, dim13)
    months = sorted(second.per_month["month"].unique())
    assert second.reused_origins == months[:-1]
    # Month 13's features leave the LSOA out; a forecast after month 13 uses it.
    panel = Panel.from_frames(counts13, dim13)
    at = int(np.flatnonzero(panel.cells == late_cell)[0])
    last = panel.n_months - 1
    assert np.isnan(context.indicator_features(panel, last)["area_council_reports"].iloc[at])
    assert context.indicator_features(panel, last + 1)["area_council_reports"].iloc[at] == 14.0
    assert context.indicator_features(panel, last)["area_council_reports"].notna().sum() == panel.n_cells - 1


def test_an_origin_key_is_the_same_whichever_origins_were_keyed_before_it():
    from ml.backtest_cache import origin_key

    counts, dim = frames(14)

    def key(panel, t):
        return origin_key(panel, "all_crime", t, panel.known_before(t), None, ["model", "ewma"], FAST)

    alone = {t: key(Panel.from_frames(counts, dim), t) for t in (5, 8, 12)}
    shared = Panel.from_frames(counts, dim)  # the digest chains kept for one origin serve the others
    assert [key(shared, t) for t in (12, 5, 8, 12)] == [alone[12], alone[5], alone[8], alone[12]]
    assert len(set(alone.values())) == 3
    # One chain of digests per cell kept per series (the latest worked out), and 20 bytes per origin.
    assert len(shared.cache()[("prefix_digests", "counts", "all_crime")]) == 1
    assert len(shared.cache()[("through", "counts", "all_crime")]) == 3
    # A count changed in month 6 changes the keys of the origins that read it, and only those.
    changed = counts.copy()
    row = changed.index[changed["month"] == sorted(changed["month"].unique())[6]][0]
    changed.loc[row, "incident_count"] += 1
    other = Panel.from_frames(changed, dim)
    assert key(other, 5) == alone[5] and key(other, 8) != alone[8] and key(other, 12) != alone[12]


def test_the_last_origin_scores_the_model_published_for_its_month_without_fitting_it_again(tmp_path, monkeypatch):
    import ml.backtest as bt

    counts, dim = frames(12)
    cache = OriginCache(tmp_path)
    panel = Panel.from_frames(counts, dim)
    first = backtest(panel, "all_crime", months=4, model_params=FAST, cache=cache)
    published = bt.forecast(panel, "all_crime", model_params=FAST, dispersion=first.residual_dispersion)
    assert bt.keep_forecast_model(cache, panel, published, None, FAST, first.residual_dispersion)

    # Month 13 arrives (with a cell first seen in it): its origin's model is the one published a month ago.
    counts13, dim13 = with_new_cell(*frames(13))
    fitted = []
    real_train = bt.train
    monkeypatch.setattr(bt, "train", lambda *a, **k: fitted.append(a[3:4]) or real_train(*a, **k))
    incremental = run(counts13, dim13, cache)
    assert fitted == [] and incremental.reused_model == published.month
    monkeypatch.setattr(bt, "train", real_train)
    fresh = run(counts13, dim13)
    assert fresh.reused_model is None
    pdt.assert_frame_equal(incremental.per_month, fresh.per_month)
    pdt.assert_frame_equal(incremental.predictions, fresh.predictions)

    # A late correction to a month the model was fitted on: the model is fitted again.
    late = counts13.copy()
    late.loc[late["month"] == late["month"].unique()[-2], "incident_count"] += 1
    monkeypatch.setattr(bt, "train", lambda *a, **k: fitted.append(a[3:4]) or real_train(*a, **k))
    corrected = run(late, dim13, cache)
    assert corrected.reused_model is None and fitted


def test_a_damaged_model_entry_is_fitted_again(tmp_path):
    from ml.backtest import forecast, keep_forecast_model

    counts, dim = frames(12)
    cache = OriginCache(tmp_path)
    panel = Panel.from_frames(counts, dim)
    published = forecast(panel, "all_crime", model_params=FAST, dispersion=0.5)
    key = keep_forecast_model(cache, panel, published, None, FAST, 0.5)
    back = cache.get_model("all_crime", key)
    np.testing.assert_array_equal(back.predict(panel, panel.n_months), published.model.predict(panel, panel.n_months))
    assert back.dispersion == 0.5 and back.feature_names == published.model.feature_names
    (tmp_path / "all_crime" / f"model-{key}.ubj").write_bytes(b"not a booster")
    assert cache.get_model("all_crime", key) is None
    assert cache.get_model("all_crime", "0" * 40) is None


def test_a_first_build_keeps_the_model_the_next_month_scores_and_a_routine_month_fits_none_for_it(tmp_path,
                                                                                                   monkeypatch):
    import ml.backtest as bt

    def publish(counts, dim):
        """What a run of the models does with the cache at horizon 2: backtest, forecast, keep both models."""
        panel = Panel.from_frames(counts, dim)
        result = backtest(panel, "all_crime", months=4, model_params=FAST, cache=cache, horizon=2)
        fc = bt.forecast(panel, "all_crime", model_params=FAST, horizon=2, dispersion=result.residual_dispersion)
        bt.keep_forecast_model(cache, panel, fc, None, FAST, result.residual_dispersion)
        return result, bt.keep_next_origin_model(cache, panel, "all_crime", result, None, FAST)

    cache = OriginCache(tmp_path)
    fitted = []
    real_train = bt.train
    monkeypatch.setattr(bt, "train", lambda *a, **k: fitted.append(a[2]) or real_train(*a, **k))
    # A first build of 11 months: nothing published the model of month 12 (data to month 10), so it is fitted.
    _, key = publish(*frames(11))
    assert key and cache.has_model("all_crime", key)
    # Month 12 arrives: its last origin scores that model as kept, and equals a fresh backtest.
    counts12, dim12 = with_new_cell(*frames(12))
    fitted.clear()
    result12, key12 = publish(counts12, dim12)
    assert result12.reused_model == result12.per_month["month"].iloc[-1]
    # Only the forecast of month 14 was fitted: the model month 13 will score is the one run 11 published.
    assert len(fitted) == 1 and key12 != key and cache.has_model("all_crime", key12)
    monkeypatch.setattr(bt, "train", real_train)
    fresh = backtest(Panel.from_frames(counts12, dim12), "all_crime", months=4, model_params=FAST, horizon=2)
    assert fresh.reused_model is None
    pdt.assert_frame_equal(result12.per_month, fresh.per_month)
    pdt.assert_frame_equal(result12.predictions, fresh.predictions)
