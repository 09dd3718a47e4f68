"""Features without leakage, a deterministic model, and a rolling-origin backtest on a synthetic hotspot panel."""

import numpy as np
import pandas as pd
import pytest

from ml.backtest import MODEL, backtest, forecast
from ml.baselines import BASELINES
from ml.features import Context, build_features
from ml.model import default_train_months, train
from ml.panel import month_add
from tests.panel_factories import disk, gold_frames, make_panel

N_MONTHS = 18
FAST = {"n_estimators": 40, "max_depth": 3}


def hotspot_counts(seed: int = 0, n_months: int = N_MONTHS) -> tuple[list[str], dict[str, np.ndarray]]:
    """127 cells; 6 persistent hotspots (rate 8 a month) among cells at rate 0.3, plus a related asb series."""
    cells = disk(6)
    rng = np.random.default_rng(seed)
    rate = np.full(len(cells), 0.3)
    rate[rng.choice(len(cells), 6, replace=False)] = 8.0
    crime = rng.poisson(rate[:, None], (len(cells), n_months)).astype(float)
    asb = rng.poisson(rate[:, None] / 2, (len(cells), n_months)).astype(float)
    return cells, {"all_crime": crime, "asb": asb}


def context_frames(cells: list[str], n_months: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    months = [month_add("2022-01", i) for i in range(n_months)]
    ss = pd.DataFrame(
        [(c, "cambridgeshire", m, *rng.poisson(1, 5)) for c in cells[:40] for m in months],
        columns=[
            "h3_cell",
            "force",
            "month",
            "searches",
            "searches_for_weapons",
            "searches_for_drugs",
            "arrests",
            "outcomes_linked_to_object",
        ],
    )
    kinds = [
        "Investigation complete; no suspect identified",
        "Unable to prosecute suspect",
        "Suspect charged",
    ]
    oc = pd.DataFrame(
        [
            (f"o{i}", c, m, kinds[i % 3])
            for i, (c, m) in enumerate((c, m) for c in cells[:30] for m in months)
        ],
        columns=["outcome_id", "h3_cell", "outcome_month", "outcome_type"],
    )
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:]) - 1) // 3 + 1}" for m in months})
    ind = pd.DataFrame(
        [
            (f"E0100000{i}", q, 10 * k + i, None if i == 1 else float(k))
            for i in range(3)
            for k, q in enumerate(quarters)
        ],
        columns=["lsoa_code", "quarter", "council_reports", "children_in_need_referrals"],
    )
    return ind, ss, oc


def test_features_never_see_the_target_month_or_later():
    cells, counts = hotspot_counts()
    fct, dim = gold_frames(counts, cells)
    ind, ss, oc = context_frames(cells, N_MONTHS)
    t = 9  # 2022-10: the last quarter that ended is 2022-Q3
    panel = make_panel(counts, cells)
    base = build_features(panel, "all_crime", t, Context.from_frames(ind, ss, oc, dim))

    rng = np.random.default_rng(5)
    future = {g: m.copy() for g, m in counts.items()}
    for m in future.values():
        m[:, t:] = rng.poisson(20, m[:, t:].shape)
    month_t = month_add("2022-01", t)
    ss2 = ss.copy()
    ss2.loc[ss2["month"] >= month_t, ["searches", "arrests"]] += 50
    oc2 = oc.copy()
    oc2.loc[oc2["outcome_month"] >= month_t, "outcome_type"] = "Suspect charged"
    ind2 = ind.copy()
    ind2.loc[ind2["quarter"] >= "2022-Q4", ["council_reports", "children_in_need_referrals"]] = 999
    perturbed = build_features(
        make_panel(future, cells), "all_crime", t, Context.from_frames(ind2, ss2, oc2, dim)
    )
    pd.testing.assert_frame_equal(base, perturbed)
    # And the perturbation was real: the same features one month later do change.
    later = build_features(
        make_panel(future, cells), "all_crime", t + 1, Context.from_frames(ind2, ss2, oc2, dim)
    )
    assert not later["lag_1"].equals(base["lag_1"])


def test_feature_values_and_short_history():
    cells, counts = hotspot_counts()
    panel = make_panel(counts, cells)
    ind, ss, oc = context_frames(cells, N_MONTHS)
    f = build_features(panel, "all_crime", 9, Context.from_frames(ind, ss, oc, gold_frames(counts, cells)[1]))
    m = counts["all_crime"]
    np.testing.assert_array_equal(f["lag_1"], m[:, 8])
    np.testing.assert_array_equal(f["lag_3"], m[:, 6])
    np.testing.assert_allclose(f["mean_6"], m[:, 3:9].mean(axis=1))
    np.testing.assert_allclose(f["ring1_lag_1"], panel.ring1 @ m[:, 8])
    np.testing.assert_allclose(f["asb_mean_3"], counts["asb"][:, 6:9].mean(axis=1))
    assert f["lag_12"].isna().all()  # only 9 months of history
    assert f["month_cos"].iloc[0] == pytest.approx(np.cos(2 * np.pi * 9 / 12))  # October
    # 2022-10 reads 2022-Q3 (index 2): council_reports = 20 + i; LSOA 1's social care is suppressed (NaN).
    lsoa = pd.Series([f"E0100000{i % 3}" for i in range(len(cells))], index=cells)
    np.testing.assert_array_equal(f["area_council_reports"], 20 + lsoa.str[-1].astype(int).to_numpy())
    assert f.loc[lsoa == "E01000001", "area_children_in_need_referrals"].isna().all()
    assert (f.loc[lsoa == "E01000000", "area_children_in_need_referrals"] == 2).all()
    # Outcomes cycle through three kinds, two of them unresolved; cells without outcomes are NaN.
    share = f["outcomes_unresolved_share_3"]
    assert share.iloc[:30].between(0.3, 0.7).all() and share.iloc[30:].isna().all()
    assert (f["ss_searches_lag_1"].iloc[40:] == 0).all()
    early = build_features(panel, "all_crime", 1)
    assert early[["lag_2", "lag_3", "lag_12"]].isna().all().all()
    np.testing.assert_array_equal(early["mean_12"], m[:, 0])


def test_area_indicator_features_are_shared_by_groups_bounded_and_never_another_contexts():
    from ml import features

    cells, counts = hotspot_counts()
    panel = make_panel(counts, cells)
    dim = gold_frames(counts, cells)[1]
    ind, ss, oc = context_frames(cells, N_MONTHS)
    ctx = Context.from_frames(ind, ss, oc, dim)
    area = list(ctx._indicator_features(panel, 9).columns)
    assert area and set(area) <= set(build_features(panel, "all_crime", 9, ctx).columns)
    # The groups read the one frame kept for the month, equal to working it out afresh.
    for group in ("asb", "theft"):
        pd.testing.assert_frame_equal(build_features(panel, group, 9, ctx)[area].reset_index(drop=True),
                                      ctx._indicator_features(panel, 9).astype(np.float32))
    # Another context on the same panel (other indicator values) is never served the first one's frame.
    ind2 = ind.assign(council_reports=ind["council_reports"] + 1000)
    other = build_features(panel, "all_crime", 9, Context.from_frames(ind2, ss, oc, dim))
    assert (other["area_council_reports"] >= 1000).all()
    # Only the months used last are kept.
    for t in range(1, N_MONTHS + 1):
        ctx.indicator_features(panel, t)
    kept = panel.cache()[("indicator_features", id(ctx))]
    assert len(kept) == min(features.INDICATOR_MONTHS_KEPT, N_MONTHS)
    assert list(kept)[-1] == N_MONTHS


def test_model_training_is_deterministic():
    cells, counts = hotspot_counts()
    panel = make_panel(counts, cells)
    months = default_train_months(15)
    a = train(panel, "all_crime", months, None, FAST)
    b = train(panel, "all_crime", months, None, FAST)
    np.testing.assert_array_equal(a.predict(panel, 15), b.predict(panel, 15))
    imp = a.feature_importance()
    assert set(imp) == set(a.feature_names) and max(imp.values()) > 0
    assert a.train_months[-1] == panel.months[14]
    with pytest.raises(ValueError, match="training months"):
        train(panel, "all_crime", [panel.n_months - 1, panel.n_months], None, FAST)


def test_backtest_scores_every_method_on_the_same_months_and_beats_random():
    cells, counts = hotspot_counts()
    panel = make_panel(counts, cells)
    ind, ss, oc = context_frames(cells, N_MONTHS)
    ctx = Context.from_frames(ind, ss, oc, gold_frames(counts, cells)[1])
    lines = []
    r = backtest(panel, "all_crime", months=12, context=ctx, model_params=FAST, progress=lines.append)
    methods = [*BASELINES, MODEL]
    assert list(r.summary.index) == methods
    months = r.per_month.groupby("method")["month"].apply(tuple)
    assert months.nunique() == 1 and months.iloc[0] == tuple(panel.months[-12:])
    assert len(lines) == 12
    # Random flagging would capture about 5% of the ideal; a persistent hotspot is easy to find.
    assert (r.summary["pei_star_5"] > 0.5).all(), r.summary["pei_star_5"]
    assert r.summary.loc[MODEL, "pei_star_5"] > 0.8
    assert r.best_baseline() in BASELINES
    assert r.best_baseline("deviance") in BASELINES
    assert set(r.predictions.columns) == {"h3_cell", "month", "observed", *methods}
    assert (r.predictions["month"] == panel.months[-1]).all()
    md = r.to_markdown(["pai_5", "pei_star_5"])
    assert md.splitlines()[0] == "| method | pai_5 | pei_star_5 |" and len(md.splitlines()) == 2 + len(
        methods
    )


def test_backtest_needs_enough_history_and_known_methods():
    cells, counts = hotspot_counts(n_months=14)
    panel = make_panel(counts, cells)
    with pytest.raises(ValueError, match="at least 15 months"):
        backtest(panel, "all_crime", months=12)
    with pytest.raises(ValueError, match="unknown methods"):
        backtest(panel, "all_crime", months=3, methods=["crystal_ball"])
    r = backtest(panel, "all_crime", months=3, methods=["ewma", "kde"])
    assert list(r.summary.index) == ["ewma", "kde"] and len(r.per_month) == 6


def test_forecast_is_for_the_month_after_the_last():
    cells, counts = hotspot_counts()
    panel = make_panel(counts, cells)
    f = forecast(panel, "all_crime", model_params=FAST)
    assert f.month == month_add(panel.months[-1], 1)
    assert len(f.predictions) == len(cells) and (f.predictions["predicted_count"] > 0).all()
    again = forecast(panel, "all_crime", model=f.model)
    np.testing.assert_array_equal(again.predictions["predicted_count"], f.predictions["predicted_count"])


def test_backtest_reports_how_the_flagged_set_drifts_between_origins():
    cells, counts = hotspot_counts()
    panel = make_panel(counts, cells)
    result = backtest(panel, "all_crime", months=12, methods=["last_month", "rolling_12"])
    drift = result.per_month.pivot(index="month", columns="method", values="flag_jaccard_5")
    assert drift.iloc[0].isna().all()  # no earlier origin to compare with
    later = drift.iloc[1:]
    assert ((later >= 0) & (later <= 1)).all().all()
    # A 12-month mean moves less from month to month than last month's counts do.
    assert later["rolling_12"].mean() > later["last_month"].mean()


def test_large_panels_sample_zero_rows_down_with_weights_that_keep_the_total():
    from ml.model import training_rows

    cells = disk(6)
    rng = np.random.default_rng(5)
    counts = rng.poisson(np.linspace(0.05, 1.5, len(cells))[:, None], (len(cells), 16)).astype(float)
    panel = make_panel({"all_crime": counts}, cells)
    months = list(range(4, 16))
    x_all, y_all, w_all = training_rows(panel, "all_crime", months, None, quiet_keep=1.0, max_rows=None)
    zeros = int((y_all == 0).sum())
    budget = int((y_all > 0).sum()) + zeros // 4
    x, y, w = training_rows(panel, "all_crime", months, None, quiet_keep=1.0, max_rows=budget)
    # Every row with crime is kept at weight 1; zero rows are sampled and reweighted so their weighted number
    # estimates the full number.
    assert (y > 0).sum() == (y_all > 0).sum() and (w[y > 0] == 1).all()
    assert len(y) < len(y_all) - zeros // 2 and abs(len(y) - budget) < 0.1 * budget
    assert abs(w[y == 0].sum() - zeros) < 0.15 * zeros
    assert list(x.columns) == list(x_all.columns)


def test_a_window_with_more_crime_rows_than_the_budget_is_thinned_alike_with_weights():
    from ml.model import training_rows

    cells = disk(6)
    rng = np.random.default_rng(6)
    counts = rng.poisson(np.linspace(0.5, 4.0, len(cells))[:, None], (len(cells), 16)).astype(float)
    panel = make_panel({"all_crime": counts}, cells)
    months = list(range(4, 16))
    _, y_all, _ = training_rows(panel, "all_crime", months, None, quiet_keep=1.0, max_rows=None)
    busy = int((y_all > 0).sum())
    budget = busy // 3
    x, y, w = training_rows(panel, "all_crime", months, None, quiet_keep=1.0, max_rows=budget)
    # About the budget is kept, rows with and without crime alike, and the weighted sums estimate the full window's.
    assert abs(len(y) - budget) < 0.1 * budget and len(x) == len(y)
    assert abs((w * y).sum() - y_all.sum()) < 0.05 * y_all.sum()
    assert abs(w[y > 0].sum() - busy) < 0.05 * busy
    assert (w[y > 0] > 1).all()
