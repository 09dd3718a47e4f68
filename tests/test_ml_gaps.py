"""Force-months that were not delivered, or arrived in part, are missing: masked, never zero, never fatal."""

import h3
import numpy as np
import pandas as pd
import pytest

from ml.backtest import MODEL, backtest, forecast
from ml.baselines import BASELINES, last_month, rolling_mean
from ml.features import build_features
from ml.metrics import pei_star
from ml.model import default_train_months, training_rows
from ml.panel import Panel, observed_force_months
from tests.panel_factories import disk, gold_frames

OTHER = h3.latlng_to_cell(53.2, -2.9, 9)  # Cheshire


def two_forces(n_months: int = 18, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Sparse counts (no zero rows, as the gold table stores them) for two forces with steady Poisson crime."""
    rng = np.random.default_rng(seed)
    a, b = disk(3), disk(3, OTHER)
    ma = rng.poisson(np.linspace(0.5, 4, len(a))[:, None], (len(a), n_months)).astype(float)
    mb = rng.poisson(np.linspace(4, 0.5, len(b))[:, None], (len(b), n_months)).astype(float)
    fa, da = gold_frames({"all_crime": ma}, a, force="cambridgeshire")
    fb, db = gold_frames({"all_crime": mb}, b, force="cheshire")
    counts = pd.concat([fa, fb], ignore_index=True)
    counts = counts[counts["incident_count"] > 0].reset_index(drop=True)
    return counts, pd.concat([da, db], ignore_index=True), ma, mb


def ledger(counts: pd.DataFrame, **status: str) -> pd.DataFrame:
    """A coverage ledger saying every force-month present arrived whole, except those given as
    ``{"force|month": status}``, which are added or overridden."""
    rows = counts[["force", "month"]].drop_duplicates().assign(source="police_uk", status="complete")
    extra = pd.DataFrame([{"force": k.split("|")[0], "month": k.split("|")[1], "source": "police_uk", "status": v}
                          for k, v in status.items()], columns=rows.columns)
    both = pd.concat([rows, extra], ignore_index=True)
    return both.drop_duplicates(["force", "month", "source"], keep="last").reset_index(drop=True)


def test_sparse_counts_with_a_missing_force_month_build_a_masked_panel():
    counts, cells, ma, _ = two_forces()
    gone = counts[(counts["force"] == "cheshire") & (counts["month"] == "2022-06")].index
    p = Panel.from_frames(counts.drop(gone), cells)
    assert p.n_months == 18 and p.missing == [("cheshire", "2022-06")]
    t = p.months.index("2022-06")
    cheshire = p.force == "cheshire"
    assert np.isnan(p.counts["all_crime"][cheshire, t]).all()
    # Sparse rows are zeros where the force delivered: the quiet cells of a delivered month are 0, not NaN.
    np.testing.assert_array_equal(p.counts["all_crime"][~cheshire], ma)


def test_the_ledger_masks_partial_force_months_too():
    counts, cells, _, _ = two_forces()
    cov = ledger(counts, **{"cambridgeshire|2022-04": "partial", "cheshire|2022-07": "missing"})
    assert len(observed_force_months(cov)) == 2 * 18 - 2
    p = Panel.from_frames(counts, cells, coverage=cov)
    assert sorted(p.missing) == [("cambridgeshire", "2022-04"), ("cheshire", "2022-07")]
    assert not p.observed[p.force == "cambridgeshire", 3].any() and p.observed[p.force == "cheshire", 3].all()


def test_a_missing_month_does_not_read_as_a_fall_in_crime():
    counts, cells, _, _ = two_forces()
    full = Panel.from_frames(counts, cells)
    gone = counts[(counts["force"] == "cheshire") & (counts["month"] == "2022-12")].index
    gap = Panel.from_frames(counts.drop(gone), cells)
    t = full.months.index("2022-12") + 1  # forecast the month right after the gap
    cheshire = gap.force == "cheshire"
    hist = full.counts["all_crime"][:, :t]
    # With the month read as zero the 3-month mean would fall by a third; masked, it is the mean of the other two.
    np.testing.assert_allclose(rolling_mean(3)(gap, "all_crime", t)[cheshire], hist[cheshire][:, [-3, -2]].mean(axis=1))
    np.testing.assert_array_equal(last_month(gap, "all_crime", t)[cheshire], hist[cheshire, -2])
    for name, fn in BASELINES.items():
        pred = fn(gap, "all_crime", t)
        assert not np.isnan(pred).any(), name
        # Every baseline's total for the force stays near its level with the month observed (a zero month would
        # pull the smoothed ones well below).
        assert pred[cheshire].sum() > 0.85 * fn(full, "all_crime", t)[cheshire].sum(), name
    f = build_features(gap, "all_crime", t)
    assert np.isnan(f["lag_1"].to_numpy()[cheshire]).all()
    assert not np.isnan(f["ewma_2"].to_numpy()).any()
    np.testing.assert_allclose(f["mean_3"].to_numpy()[cheshire], hist[cheshire][:, [-3, -2]].mean(axis=1))
    # A ring sum over a masked month stands each unknown neighbour in by its own smoothed history: the force's
    # neighbourhood keeps its level (read as zero it would vanish), and a ring with no masked cell is unchanged.
    ring_gap = f["ring1_lag_1"].to_numpy()
    ring_full = build_features(full, "all_crime", t)["ring1_lag_1"].to_numpy()
    assert not np.isnan(ring_gap).any()
    assert ring_gap[cheshire].sum() > 0.85 * ring_full[cheshire].sum()
    untouched = np.asarray(gap.ring1 @ cheshire.astype(float)).ravel() == 0
    assert untouched.any() and (ring_gap[untouched] == ring_full[untouched]).all()


def test_training_leaves_out_unobserved_targets():
    counts, cells, _, _ = two_forces()
    gone = counts[(counts["force"] == "cheshire") & (counts["month"] == "2022-10")].index
    p = Panel.from_frames(counts.drop(gone), cells)
    t = p.months.index("2022-10")
    x, y, w = training_rows(p, "all_crime", [t], None, quiet_keep=1.0)
    assert len(y) == int((p.force != "cheshire").sum()) and not np.isnan(y).any()


def test_backtest_and_forecast_run_through_gaps_and_score_only_what_was_observed():
    counts, cells, _, _ = two_forces(n_months=20)
    cov = ledger(counts, **{"cheshire|2023-03": "missing", "cambridgeshire|2023-05": "partial"})
    gone = counts[(counts["force"] == "cheshire") & (counts["month"] == "2023-03")].index
    p = Panel.from_frames(counts.drop(gone), cells, coverage=cov)
    res = backtest(p, "all_crime", months=6, methods=["ewma", "rolling_3", MODEL])
    assert res.per_month["month"].nunique() == 6
    for month, force in (("2023-03", "cheshire"), ("2023-05", "cambridgeshire")):
        t = p.months.index(month)
        kept = p.observed_in(t)
        assert kept.sum() == int((p.force != force).sum())
        # The month is scored on the other force alone: the ideal set for PEI* comes from its cells only.
        obs = p.counts["all_crime"][kept, t]
        pred = BASELINES["ewma"](p, "all_crime", t)[kept]
        row = res.per_month[(res.per_month["method"] == "ewma") & (res.per_month["month"] == month)].iloc[0]
        assert row["pei_star_5"] == pytest.approx(pei_star(pred, obs, 0.05))
    nxt = forecast(p, "all_crime")
    assert len(nxt.predictions) == p.n_cells and not nxt.predictions["predicted_count"].isna().any()


def test_a_panel_entirely_missing_in_the_last_month_still_forecasts():
    counts, cells, _, _ = two_forces(n_months=16)
    last = counts["month"].max()
    cov = ledger(counts, **{f"cheshire|{last}": "missing", f"cambridgeshire|{last}": "partial"})
    p = Panel.from_frames(counts, cells, coverage=cov)
    assert not p.observed[:, -1].any() and p.scored_months()[-1] == p.n_months - 2
    res = backtest(p, "all_crime", months=4, methods=["ewma"])
    assert res.per_month["month"].max() == p.months[-2]
    assert default_train_months(p.n_months)[-1] == p.n_months - 1
    nxt = forecast(p, "all_crime")
    assert nxt.month == pd.Period(last, "M").__add__(1).strftime("%Y-%m")
    assert (nxt.predictions["predicted_count"] > 0).all()
