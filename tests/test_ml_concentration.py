"""Crime concentration: top-k shares, Lorenz curve, Gini and Bernasco & Steenbeek's generalised Gini."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest

from ml.concentration import COLUMNS, concentration, concentration_matrix, gini, gini_generalised, lorenz

CENTRE = h3.latlng_to_cell(52.136, -0.466, 9)


def grid(k: int = 6) -> list[str]:
    return sorted(h3.grid_disk(CENTRE, k))


def counts_frame(values_by_month: dict[str, np.ndarray], ids: list[str], force="bedfordshire",
                 group="all_crime") -> pd.DataFrame:
    return pd.concat([
        pd.DataFrame({"h3_cell": ids, "force": force, "month": m, "forecast_group": group,
                      "incident_count": v.astype(int), "knife_enabled_count": 0})
        for m, v in values_by_month.items()
    ], ignore_index=True)


def test_lorenz_runs_from_origin_to_one_from_the_most_to_the_least_crime():
    x, y = lorenz([0, 5, 1, 4])
    assert x.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert y.tolist() == [0.0, 0.5, 0.9, 1.0, 1.0]


def test_lorenz_without_crime_is_undefined():
    _, y = lorenz([0, 0, 0])
    assert np.isnan(y).all()


def test_all_incidents_in_one_cell_give_top1_share_one_and_maximal_gini():
    values = np.zeros(100)
    values[17] = 250
    row = concentration(counts_frame({"2024-01": values}, [f"c{i}" for i in range(100)])).iloc[0]
    assert row["top1_share"] == pytest.approx(1.0)
    assert row["top5_share"] == pytest.approx(1.0)
    assert row["gini"] == pytest.approx(0.99)  # (n - 1) / n, the most a sample Gini over 100 places reaches
    assert row["gini_corrected"] == pytest.approx(0.99)  # 250 crimes >= 100 places: no sparse correction


def test_uniform_counts_give_gini_zero_and_proportional_shares():
    row = concentration(counts_frame({"2024-01": np.full(200, 3)}, [f"c{i}" for i in range(200)])).iloc[0]
    assert row["gini"] == pytest.approx(0.0, abs=1e-12)
    assert row["gini_corrected"] == pytest.approx(0.0, abs=1e-12)
    assert row["top1_share"] == pytest.approx(0.01)
    assert row["top10_share"] == pytest.approx(0.10)


def test_top_share_interpolates_between_whole_cells():
    # 150 cells: the top 1% is 1.5 cells, i.e. all of the busiest cell and half of the next one.
    values = np.zeros(150)
    values[:2] = [60, 20]
    values[2:] = 1
    x, y = lorenz(values)
    total = values.sum()
    assert np.interp(0.01, x, y) == pytest.approx((60 + 10) / total)


@pytest.mark.parametrize(
    ("crimes", "g", "g_corrected"),
    [
        # Worked examples of the authors' lorenzgini::gini(unbiased = FALSE).
        ([5, 2, 1, 0, 0, 0, 0, 0, 0, 0], 0.80, 0.75),
        ([10, 8, 2, 0, 0, 0, 0, 0, 0, 0], 0.78, 0.78),  # 20 crimes >= 10 places: G' = G
        # By hand: G = 2*47/50 - 1.1 = 0.78; G' = 1 - (10/5)(1 - 0.78) = 0.56.
        ([3, 1, 1, 0, 0, 0, 0, 0, 0, 0], 0.78, 0.56),
        # Five crimes in five different places is as equal as five crimes over ten places can be.
        ([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], 0.50, 0.0),
        # A single crime anywhere: the ordinary Gini calls it 0.9 concentrated, G' calls it not concentrated.
        ([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0.90, 0.0),
    ],
)
def test_generalised_gini_on_hand_checked_cases(crimes, g, g_corrected):
    assert gini(crimes) == pytest.approx(g)
    assert gini_generalised(crimes) == pytest.approx(g_corrected)


def test_correction_only_matters_when_crimes_are_fewer_than_places():
    rng = np.random.default_rng(3)
    n = 400
    sparse = rng.multinomial(100, np.full(n, 1 / n))  # 100 crimes over 400 places
    dense = rng.multinomial(20_000, np.full(n, 1 / n))
    assert gini_generalised(sparse) < gini(sparse) - 0.3
    assert gini_generalised(dense) == gini(dense)
    # As N approaches n from below, G' approaches G.
    near = np.ones(n)
    near[0] = 0
    assert gini_generalised(near) == pytest.approx(gini(near), abs=0.003)


def test_concentration_over_cells_counts_missing_cells_as_zero_and_keeps_keys():
    ids = grid(3)  # 37 cells
    cells = pd.DataFrame({"h3_cell": ids, "force": "bedfordshire"})
    busy = ids[:5]
    counts = pd.concat([
        counts_frame({"2024-01": np.array([4, 4, 4, 4, 4])}, busy),
        counts_frame({"2024-02": np.zeros(5)}, busy),
        counts_frame({"2024-01": np.array([9, 1, 0, 0, 0])}, busy, group="asb"),
    ], ignore_index=True)
    out = concentration(counts, cells=cells, groups=["all_crime"])
    assert list(out.columns) == COLUMNS
    assert out["forecast_group"].unique().tolist() == ["all_crime"]
    jan = out.set_index("month").loc["2024-01"]
    assert jan["cells"] == 37 and jan["incidents"] == 20
    # 20 crimes, 5 of 37 cells with 4 each: the 32 empty cells count, so the Gini is far from 0.
    assert jan["gini"] == pytest.approx(gini([4] * 5 + [0] * 32))
    assert jan["gini"] > 0.8
    feb = out.set_index("month").loc["2024-02"]
    assert feb["incidents"] == 0 and np.isnan(feb["gini"]) and np.isnan(feb["top1_share"])


def test_concentration_without_cells_uses_the_zero_filled_counts():
    ids = [f"c{i}" for i in range(20)]
    values = np.arange(20)
    out = concentration(counts_frame({"2024-03": values}, ids))
    assert out.loc[0, "cells"] == 20
    assert out.loc[0, "gini"] == pytest.approx(gini(values))


def test_a_force_month_not_delivered_whole_has_no_row_and_sparse_counts_count_zero():
    ids = grid(2)  # 19 cells
    cells = pd.DataFrame({"h3_cell": ids, "force": "bedfordshire"})
    counts = pd.concat([counts_frame({m: np.array([3, 1])}, ids[:2]) for m in ("2024-01", "2024-02", "2024-03")],
                       ignore_index=True)  # sparse: only the cells with crime have rows
    ledger = pd.DataFrame({"force": "bedfordshire", "month": ["2024-01", "2024-02", "2024-03"],
                           "status": ["complete", "partial", "complete"]})
    out = concentration(counts, cells=cells, coverage=ledger)
    assert out["month"].tolist() == ["2024-01", "2024-03"]  # the partial month is unknown, not a month of data
    assert (out["cells"] == 19).all() and out.loc[0, "gini"] == pytest.approx(gini([3, 1] + [0] * 17))
    # Without a ledger, a month in which the force has no rows at all is unknown too.
    quiet = concentration(counts[counts["month"] != "2024-02"], cells=cells)
    assert quiet["month"].tolist() == ["2024-01", "2024-03"]


def test_concentration_matrix_equals_the_one_place_functions_and_skips_unobserved_cells():
    rng = np.random.default_rng(9)
    x = rng.negative_binomial(0.4, 0.4, size=(150, 6)).astype(float)
    x[:, 5] = 0
    out = concentration_matrix(x)
    for t in range(5):
        xs, ys = lorenz(x[:, t])
        assert out["gini"][t] == pytest.approx(gini(x[:, t]))
        assert out["gini_corrected"][t] == pytest.approx(gini_generalised(x[:, t]))
        assert out["top5_share"][t] == pytest.approx(np.interp(0.05, xs, ys))
    assert np.isnan(out["gini"][5]) and out["incidents"][5] == 0
    observed = np.ones(x.shape, dtype=bool)
    observed[:50, 0] = False
    part = concentration_matrix(x, observed)
    assert part["cells"][0] == 100 and part["gini"][0] == pytest.approx(gini(x[50:, 0]))
