"""Getis-Ord Gi* on H3 ring-1 neighbourhoods with FDR bins, and emerging hot spot classes."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pymannkendall as mk
import pytest

from ml.emerging import CATEGORIES, classify, emerging_hotspots, mann_kendall
from ml.hotspots import _gi_bins, gi_star, gi_star_series, ring1_weights

CENTRE = h3.latlng_to_cell(52.136, -0.466, 9)
FORCE, GROUP = "bedfordshire", "all_crime"


def dim_cells(k: int = 7, with_rings: bool = True) -> pd.DataFrame:
    ids = sorted(h3.grid_disk(CENTRE, k))
    return pd.DataFrame({
        "h3_cell": ids, "force": FORCE,
        "neighbours_ring1": [",".join(sorted(h3.grid_ring(c, 1))) if with_rings else None for c in ids],
    })


def distance(cell: str) -> int:
    return h3.grid_distance(CENTRE, cell)


def month_counts(cells: pd.DataFrame, rng, base: float = 1.0, hot: float = 0.0, hot_radius: int = 1):
    d = np.array([distance(c) for c in cells["h3_cell"]])
    lam = np.where(d <= hot_radius, hot, base) if hot else np.full(d.size, base)
    return pd.Series(rng.poisson(lam), index=cells["h3_cell"].to_numpy())


def counts_frame(series_by_month: dict[str, pd.Series]) -> pd.DataFrame:
    return pd.concat([
        pd.DataFrame({"h3_cell": s.index, "force": FORCE, "month": m, "forecast_group": GROUP,
                      "incident_count": s.to_numpy(), "knife_enabled_count": 0})
        for m, s in series_by_month.items()
    ], ignore_index=True)


# --- weights ----------------------------------------------------------------------------------------------

def test_weights_include_the_cell_and_only_study_area_neighbours():
    cells = dim_cells(3)
    w = ring1_weights(cells["h3_cell"], cells)
    assert sorted(w.neighbors[CENTRE]) == sorted([CENTRE, *h3.grid_ring(CENTRE, 1)])
    edge = next(c for c in cells["h3_cell"] if distance(c) == 3)
    assert edge in w.neighbors[edge]
    assert len(w.neighbors[edge]) < 7  # ring-1 cells outside the study area are dropped
    assert all(n in set(cells["h3_cell"]) for ns in w.neighbors.values() for n in ns)


def test_weights_fall_back_on_h3_when_neighbour_lists_are_missing():
    with_lists = ring1_weights(dim_cells(3)["h3_cell"], dim_cells(3))
    without = ring1_weights(dim_cells(3)["h3_cell"], dim_cells(3, with_rings=False))
    assert {k: sorted(v) for k, v in with_lists.neighbors.items()} == {k: sorted(v) for k, v in without.neighbors.items()}


# --- Gi* ----------------------------------------------------------------------------------------------------

def test_gi_star_z_matches_the_ord_getis_formula_with_the_cell_in_its_own_neighbourhood():
    cells = dim_cells(4)
    y = month_counts(cells, np.random.default_rng(0), base=2.0, hot=9.0)
    out = gi_star(y, cells).set_index("h3_cell")
    x = y.to_numpy(dtype=float)
    n, xbar, s = x.size, x.mean(), x.std()
    hood = [CENTRE, *h3.grid_ring(CENTRE, 1)]
    wsum = len(hood)
    expected = (y[hood].sum() - xbar * wsum) / (s * np.sqrt((n * wsum - wsum**2) / (n - 1)))
    assert out.loc[CENTRE, "gi_z"] == pytest.approx(expected)


def test_planted_cluster_is_a_significant_hot_spot_and_far_cells_are_not():
    cells = dim_cells(7)
    y = month_counts(cells, np.random.default_rng(1), base=1.0, hot=12.0)
    out = gi_star(y, cells).set_index("h3_cell")
    assert out.loc[CENTRE, "gi_bin"] == 3
    assert out.loc[CENTRE, "p_fdr"] < 0.01
    far = [c for c in out.index if distance(c) >= 4]
    assert (out.loc[far, "gi_bin"] <= 0).all()
    assert out["significant"].sum() >= 7


def test_fdr_makes_fewer_cells_significant_than_raw_p_on_noise():
    cells = dim_cells(7)
    raw = fdr = 0
    for seed in range(5):
        out = gi_star(month_counts(cells, np.random.default_rng(100 + seed), base=2.0), cells)
        assert (out["p_fdr"] >= out["p_value"] - 1e-15).all()
        raw += int((out["p_value"] < 0.05).sum())
        fdr += int((out["p_fdr"] < 0.05).sum())
    assert raw > 0
    assert fdr < raw


def test_bins_follow_arcgis_confidence_levels_on_adjusted_p():
    z = np.array([4.0, 2.5, 1.8, 1.0, -1.8, -2.5, -4.0])
    p = np.array([0.001, 0.03, 0.08, 0.3, 0.08, 0.03, 0.001])
    assert _gi_bins(z, p).tolist() == [3, 2, 1, 0, -1, -2, -3]


def test_a_month_without_variation_has_no_hot_or_cold_spots():
    cells = dim_cells(2)
    out = gi_star(pd.Series(0, index=cells["h3_cell"]), cells)
    assert (out["gi_bin"] == 0).all() and (out["p_value"] == 1).all()


def test_series_covers_every_study_cell_and_month():
    cells = dim_cells(5)
    rng = np.random.default_rng(2)
    months = {f"2024-{m:02d}": month_counts(cells, rng, hot=10.0) for m in range(1, 5)}
    frame = counts_frame(months)
    frame = frame[frame["incident_count"] > 0]  # gaps must count as zero, not vanish
    out = gi_star_series(frame, cells, FORCE, GROUP)
    assert len(out) == len(cells) * 4
    assert sorted(out["month"].unique()) == sorted(months)
    assert (out.loc[out["h3_cell"] == CENTRE, "gi_bin"] == 3).all()
    # The same month through gi_star gives the same answer.
    one = gi_star(months["2024-02"], cells).set_index("h3_cell")["gi_z"]
    two = out[out["month"] == "2024-02"].set_index("h3_cell")["gi_z"]
    assert np.allclose(one.reindex(two.index), two)


# --- emerging hot spot classes ----------------------------------------------------------------------------

UP = np.linspace(3.0, 9.0, 12)
FLAT = np.array([4.1, 3.9, 4.3, 3.8, 4.2, 4.0, 3.9, 4.2, 4.1, 3.8, 4.3, 4.0])
NOISE = np.array([0.3, -0.2, 0.5, -0.4, 0.1, 0.0, 0.4, -0.3, 0.2, -0.1, 0.3, 0.0])


@pytest.mark.parametrize(
    ("bins", "z", "expected"),
    [
        ([0] * 11 + [2], NOISE, "New Hot Spot"),
        ([0] * 8 + [1, 2, 3, 3], NOISE, "Consecutive Hot Spot"),
        ([3] * 12, UP, "Intensifying Hot Spot"),
        ([3] * 12, FLAT, "Persistent Hot Spot"),
        ([0] + [3] * 11, FLAT, "Persistent Hot Spot"),  # an 11-of-12 run is >= 90%: not Consecutive
        ([3] * 12, UP[::-1], "Diminishing Hot Spot"),
        ([0, 2, 0, 0, 3, 0, 1, 0, 0, 2, 0, 2], NOISE, "Sporadic Hot Spot"),
        ([0, 2, 2, 0, 0, 0, 1, 1, 0, 0, 2, 2], NOISE, "Sporadic Hot Spot"),
        ([-2, 0, 2, 0, -1, 0, 0, 2, 0, 0, 0, 3], NOISE, "Oscillating Hot Spot"),
        ([2] * 11 + [0], FLAT, "Historical Hot Spot"),
        ([2] * 11 + [-1], FLAT, "Historical Hot Spot"),  # hot patterns are tested before cold ones
        ([0] * 11 + [-1], NOISE, "New Cold Spot"),
        ([0] * 9 + [-1, -2, -2], NOISE, "Consecutive Cold Spot"),
        ([-3] * 12, -UP, "Intensifying Cold Spot"),
        ([-3] * 12, -FLAT, "Persistent Cold Spot"),
        ([-3] * 12, -UP[::-1], "Diminishing Cold Spot"),
        ([0, -1, 0, -2, 0, 0, 0, -1, 0, 0, 0, -1], NOISE, "Sporadic Cold Spot"),
        ([0, 2, 0, -1, 0, 0, 2, 0, 0, 0, 0, -2], NOISE, "Oscillating Cold Spot"),
        ([-2] * 11 + [0], -FLAT, "Historical Cold Spot"),
        ([0] * 12, NOISE, "No Pattern Detected"),
        ([0, 2, 2, 0, 0, 0, 1, 1, 0, 0, 2, 0], NOISE, "No Pattern Detected"),  # hot before, not now, < 90%
    ],
)
def test_classify_follows_arcgis_definitions(bins, z, expected):
    result = classify(bins, z)
    assert expected in CATEGORIES
    assert result["category"] == expected
    assert result["hot_steps"] == sum(b > 0 for b in bins)
    assert result["cold_steps"] == sum(b < 0 for b in bins)
    assert result["final_bin"] == bins[-1]


def test_classify_reports_the_mann_kendall_trend_of_z():
    up = classify([3] * 12, UP)
    assert up["trend"] == "increasing" and up["trend_p"] < 0.001
    assert classify([3] * 12, FLAT)["trend"] == "no trend"


def test_emerging_hotspots_find_a_cluster_that_appears_in_the_last_months():
    cells = dim_cells(6)
    rng = np.random.default_rng(7)
    months = {}
    for m in range(1, 13):
        hot = 14.0 if m >= 7 else 0.0  # the cluster appears in July
        months[f"2024-{m:02d}"] = month_counts(cells, rng, base=1.0, hot=hot)
    counts = counts_frame(months)
    out = emerging_hotspots(counts, cells, FORCE, GROUP, window=12).set_index("h3_cell")
    assert len(out) == len(cells)
    assert out.loc[CENTRE, "category"] == "Consecutive Hot Spot"
    assert out.loc[CENTRE, "hot_steps"] == 6
    assert out.loc[CENTRE, "count_trend"] == "increasing"
    far = [c for c in out.index if distance(c) >= 4]
    assert (~out.loc[far, "category"].str.contains("Hot Spot")).all()
    # With the window ending in June the cluster has not happened yet.
    before = emerging_hotspots(counts, cells, FORCE, GROUP, window=6, end_month="2024-06").set_index("h3_cell")
    assert before.loc[CENTRE, "category"] == "No Pattern Detected"
    assert before.loc[CENTRE, "hot_steps"] == 0


def test_emerging_hotspots_find_a_persistent_cluster_and_reuse_a_precomputed_series():
    cells = dim_cells(6)
    rng = np.random.default_rng(11)
    counts = counts_frame({f"2025-{m:02d}": month_counts(cells, rng, base=1.0, hot=12.0) for m in range(1, 13)})
    series = gi_star_series(counts, cells, FORCE, GROUP)
    out = emerging_hotspots(counts, cells, FORCE, GROUP, window=12, series=series).set_index("h3_cell")
    assert out.loc[CENTRE, "category"] in {"Persistent Hot Spot", "Intensifying Hot Spot", "Diminishing Hot Spot"}
    assert out.loc[CENTRE, "hot_steps"] == 12


def test_mann_kendall_cache_gives_the_library_result():
    rng = np.random.default_rng(5)
    cache: dict = {}
    for _ in range(200):
        v = rng.poisson(2, 12).astype(float) + np.linspace(0, rng.normal(0, 2), 12).round()
        cached = mann_kendall(v, cache=cache)
        res = mk.original_test(v)
        assert cached == (res.trend, pytest.approx(res.p))
