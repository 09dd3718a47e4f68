"""Getis-Ord Gi* on H3 ring-1 neighbourhoods with FDR bins, Mann-Kendall trends and emerging hot spot classes,
vectorised over cells and months, checked against esda, pymannkendall and the per-cell reference."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pymannkendall as mk
import pytest
from scipy import stats

from ml import hotspot_reference as reference
from ml.cell_months import CellMonths, month_range
from ml.emerging import CATEGORIES, classify, classify_cells, emerging_hotspots
from ml.hotspots import gi_bins, gi_star, gi_star_matrix, gi_star_series, ring1_matrix
from ml.trend import mann_kendall, mann_kendall_matrix

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

def neighbours(w, ids, cell) -> list[str]:
    row = w.getrow(ids.index(cell))
    return sorted(ids[j] for j in row.indices)


def test_weights_include_the_cell_and_only_study_area_neighbours():
    cells = dim_cells(3)
    ids = cells["h3_cell"].tolist()
    w = ring1_matrix(ids, cells["neighbours_ring1"])
    assert neighbours(w, ids, CENTRE) == sorted([CENTRE, *h3.grid_ring(CENTRE, 1)])
    edge = next(c for c in ids if distance(c) == 3)
    assert edge in neighbours(w, ids, edge)
    assert len(neighbours(w, ids, edge)) < 7  # ring-1 cells outside the study area are dropped
    assert set(w.data) == {1.0} and (w != w.T).nnz == 0


def test_weights_fall_back_on_h3_when_neighbour_lists_are_missing():
    ids = dim_cells(3)["h3_cell"].tolist()
    with_lists = ring1_matrix(ids, dim_cells(3)["neighbours_ring1"])
    without = ring1_matrix(ids, dim_cells(3, with_rings=False)["neighbours_ring1"])
    assert (with_lists != without).nnz == 0


def test_weights_never_link_two_study_areas():
    ids = dim_cells(3)["h3_cell"].tolist()
    areas = np.where([distance(c) <= 1 for c in ids], "inner", "outer")
    w = ring1_matrix(ids, areas=areas).tocoo()
    assert (areas[w.row] == areas[w.col]).all()
    assert w.nnz < ring1_matrix(ids).nnz


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
    assert gi_bins(z, p).tolist() == [3, 2, 1, 0, -1, -2, -3]
    assert gi_bins(np.array([np.nan, 3.0]), np.array([np.nan, 0.001])).tolist() == [0, 3]


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


# --- exactness of the vectorised code against the reference libraries ---------------------------------------

def esda_z(y: np.ndarray, w) -> np.ndarray:
    import warnings

    from esda import G_Local
    from libpysal.weights import W

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(G_Local(y, W.from_sparse(w), transform="B", permutations=0, star=True).Zs)


def test_vectorised_gi_star_equals_esda_on_every_month():
    cells = dim_cells(6)
    ids = cells["h3_cell"].tolist()
    w = ring1_matrix(ids, cells["neighbours_ring1"])
    rng = np.random.default_rng(21)
    x = rng.poisson(rng.gamma(1.0, 2.0, size=(len(ids), 1)), size=(len(ids), 8)).astype(float)
    z, p, p_fdr, bins = gi_star_matrix(x, w)
    for t in range(x.shape[1]):
        assert np.allclose(z[:, t], esda_z(x[:, t], w), rtol=1e-10, atol=1e-12)
    assert np.allclose(p, 2 * stats.norm.sf(np.abs(z)))
    assert (p_fdr >= p - 1e-15).all()
    assert np.abs(bins).max() == 3  # the gamma-mixed rates make real clusters


def test_an_unobserved_cell_month_is_left_out_of_gi_star_not_read_as_zero():
    cells = dim_cells(5)
    ids = cells["h3_cell"].tolist()
    w = ring1_matrix(ids, cells["neighbours_ring1"])
    rng = np.random.default_rng(8)
    x = rng.poisson(2.0, size=(len(ids), 3)).astype(float)
    observed = np.ones(x.shape, dtype=bool)
    hidden = rng.choice(len(ids), 12, replace=False)
    observed[hidden, 1] = False
    z, _, p_fdr, bins = gi_star_matrix(x, w, observed)
    assert np.isnan(z[hidden, 1]).all() and np.isnan(p_fdr[hidden, 1]).all() and (bins[hidden, 1] == 0).all()
    # The month is Gi* over the observed cells alone, as esda computes it on that sub-area ...
    seen = np.flatnonzero(observed[:, 1])
    sub = w.tocsr()[seen][:, seen]
    assert np.allclose(z[seen, 1], esda_z(x[seen, 1], sub), rtol=1e-10, atol=1e-12)
    # ... so whatever the hidden cells hold changes nothing.
    x[hidden, 1] = 1000.0
    assert np.allclose(gi_star_matrix(x, w, observed)[0], z, equal_nan=True)
    assert np.allclose(z[:, [0, 2]], gi_star_matrix(x[:, [0, 2]], w)[0])


def test_gi_star_runs_each_study_area_on_its_own():
    cells = dim_cells(5)
    ids = cells["h3_cell"].tolist()
    areas = np.where([distance(c) <= 2 for c in ids], "inner", "outer")
    w = ring1_matrix(ids, cells["neighbours_ring1"], areas=areas)
    x = np.random.default_rng(4).poisson(3.0, size=(len(ids), 2)).astype(float)
    z, _, p_fdr, _ = gi_star_matrix(x, w, areas=areas)
    for area in ("inner", "outer"):
        rows = np.flatnonzero(areas == area)
        alone, _, fdr_alone, _ = gi_star_matrix(x[rows], w.tocsr()[rows][:, rows])
        assert np.allclose(z[rows], alone) and np.allclose(p_fdr[rows], fdr_alone)


def test_vectorised_mann_kendall_equals_pymannkendall_with_ties_and_gaps():
    rng = np.random.default_rng(5)
    x = rng.poisson(2, (400, 14)).astype(float) + np.linspace(0, 1, 14) * rng.integers(-3, 4, (400, 1))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[0] = 4.0  # flat
    x[1, 2:] = np.nan  # two observed steps
    trend, p, z = mann_kendall_matrix(x)
    names = {"increasing": 1, "decreasing": -1, "no trend": 0}
    assert {int(t) for t in trend} == {-1, 0, 1}
    for row, (t, pv, zv) in enumerate(zip(trend, p, z, strict=True)):
        if np.isfinite(x[row]).sum() < 3:  # too short for a trend (pymannkendall divides by zero on one point)
            assert (t, pv) == (0, 1.0)
            continue
        res = mk.original_test(x[row])
        assert (names[res.trend], pv, zv) == (t, pytest.approx(res.p, abs=1e-12), pytest.approx(res.z, abs=1e-12))
    res = mk.original_test(x[7])
    assert mann_kendall(x[7]) == (res.trend, pytest.approx(res.p))


def random_bins(rng, n: int, steps: int):
    """Bins and z-scores that reach every category: mostly-hot, mostly-cold, mixed and quiet cells."""
    bins = rng.choice([-3, -1, 0, 0, 0, 1, 2, 3], size=(n, steps))
    bins[: n // 3] = np.where(rng.random((n // 3, steps)) < 0.92, 3, 0)
    bins[n // 3: n // 2] = np.where(rng.random((n // 2 - n // 3, steps)) < 0.92, -2, 0)
    fresh = slice(n // 2, n // 2 + n // 8)  # quiet, then a run of one to three significant steps at the end
    run = rng.integers(1, 4, n // 8)[:, None]
    sign = rng.choice([-2, 2], (n // 8, 1))
    bins[fresh] = np.where(np.arange(steps) >= steps - run, sign, 0)
    z = rng.normal(size=(n, steps)) + np.linspace(0, 1, steps) * rng.normal(0, 3, (n, 1))
    return bins, z


@pytest.mark.parametrize("masked", [False, True])
def test_vectorised_classes_equal_the_per_cell_reference(masked):
    rng = np.random.default_rng(13)
    bins, z = random_bins(rng, 1500, 12)
    observed = rng.random(bins.shape) > 0.2 if masked else np.ones(bins.shape, dtype=bool)
    out = classify_cells(bins, z, observed)
    got = np.asarray(CATEGORIES, dtype=object)[out["category_code"]]
    expected = [reference.classify(b, np.where(o, zz, np.nan))[0] for b, zz, o in zip(bins, z, observed, strict=True)]
    assert got.tolist() == expected
    assert set(expected) == set(CATEGORIES)  # every rule was exercised


def test_fully_observed_panel_gives_exactly_the_reference_classes():
    cells = dim_cells(7)
    ids = cells["h3_cell"].tolist()
    w = ring1_matrix(ids, cells["neighbours_ring1"])
    rng = np.random.default_rng(3)
    d = np.array([distance(c) for c in ids])
    lam = np.where(d[:, None] <= 1, np.linspace(0.5, 9.0, 12), 1.0) + (d[:, None] == 5) * np.linspace(4, 0, 12)
    x = rng.poisson(lam).astype(float)
    z, _, _, bins = gi_star_matrix(x, w)
    ref_z, ref_bins = reference.gi_star_months(x, w)
    assert np.allclose(z, ref_z, atol=1e-12) and (bins == ref_bins).all()
    got = np.asarray(CATEGORIES, dtype=object)[classify_cells(bins, z)["category_code"]].tolist()
    expected = reference.emerging_classes(x, w)
    assert got == expected
    assert len(set(expected)) >= 3


# --- missing force-months -----------------------------------------------------------------------------------

def twelve_months(seed: int, hot: float = 12.0) -> dict[str, pd.Series]:
    cells, rng = dim_cells(6), np.random.default_rng(seed)
    return {f"2024-{m:02d}": month_counts(cells, rng, base=1.0, hot=hot) for m in range(1, 13)}


def test_a_missing_final_month_is_neither_a_cold_spot_nor_a_fall():
    cells = dim_cells(6)
    months = twelve_months(17)
    counts = counts_frame({m: s for m, s in months.items() if m != "2024-12"})  # December never arrived
    counts = counts[counts["incident_count"] > 0]  # sparse, as fct_cell_month_counts is
    out = emerging_hotspots(counts, cells, FORCE, GROUP, window=12, end_month="2024-12").set_index("h3_cell")
    assert out.loc[CENTRE, "category"] in {"Persistent Hot Spot", "Intensifying Hot Spot"}
    assert out.loc[CENTRE, "final_month"] == "2024-11" and out.loc[CENTRE, "observed_steps"] == 11
    assert out.loc[CENTRE, "count_trend"] != "decreasing"
    assert not out["category"].str.contains("Cold Spot").any()
    # The gap changes nothing: the answer is that of the eleven months that arrived.
    eleven = emerging_hotspots(counts, cells, FORCE, GROUP, window=11, end_month="2024-11").set_index("h3_cell")
    pd.testing.assert_frame_equal(out, eleven)
    # Read as a month of zeros instead, the same data would retire the hot spot and show falls everywhere.
    as_zero = emerging_hotspots(counts, cells, FORCE, GROUP, window=12, end_month="2024-12",
                                observed_months=list(months)).set_index("h3_cell")
    assert as_zero.loc[CENTRE, "category"] == "Historical Hot Spot"
    assert (as_zero["count_trend"] == "decreasing").sum() > (out["count_trend"] == "decreasing").sum()


def test_a_missing_month_in_the_window_does_not_count_as_a_step():
    cells = dim_cells(6)
    months = twelve_months(23)
    observed = [m for m in months if m not in {"2024-04", "2024-05"}]
    counts = counts_frame(months)
    out = emerging_hotspots(counts, cells, FORCE, GROUP, window=12, observed_months=observed).set_index("h3_cell")
    assert out.loc[CENTRE, "observed_steps"] == 10 and out.loc[CENTRE, "hot_steps"] == 10
    series = gi_star_series(counts, cells, FORCE, GROUP, observed_months=observed)
    assert set(series["month"]) == set(observed)  # unobserved months have no Gi* rows at all
    again = emerging_hotspots(counts, cells, FORCE, GROUP, window=12, series=series).set_index("h3_cell")
    assert again["category"].equals(out["category"]) and again["trend_p"].equals(out["trend_p"])


def test_cell_months_from_sparse_counts_and_the_coverage_ledger():
    cells = dim_cells(2)
    ids = cells["h3_cell"].tolist()
    counts = pd.DataFrame({
        "h3_cell": [ids[0], ids[1], ids[0], ids[2], "89195da49b7ffff"],
        "force": [FORCE, FORCE, FORCE, "elsewhere", FORCE],
        "month": ["2024-01", "2024-01", "2024-03", "2024-03", "2024-03"],
        "forecast_group": GROUP, "incident_count": [2, 1, 5, 9, 4]})
    plain = CellMonths.from_frames(counts, cells, [GROUP])
    assert plain.months == month_range("2024-01", "2024-03") == ["2024-01", "2024-02", "2024-03"]
    assert plain.observed.all(axis=0).tolist() == [True, False, True]  # no rows at all in February
    m = plain.counts[GROUP]
    assert m[0].tolist()[0] == 2 and np.isnan(m[:, 1]).all() and m[1:, 2].sum() == 0  # quiet cells count zero
    assert plain.unmatched_rows == 2  # another force's row and a cell outside the study area
    ledger = pd.DataFrame({"force": FORCE, "month": ["2024-01", "2024-02", "2024-03", "2024-04"],
                           "status": ["complete", "complete", "partial", "missing"]})
    covered = CellMonths.from_frames(counts, cells, [GROUP], coverage=ledger)
    assert covered.months[-1] == "2024-04"
    assert covered.observed.all(axis=0).tolist() == [True, True, False, False]
    assert covered.counts[GROUP][:, 1].sum() == 0  # delivered whole with no crime: zeros, not unknown
    with pytest.raises(ValueError, match="negative"):
        CellMonths.from_frames(counts.assign(incident_count=-1), cells, [GROUP])
    # A group with no rows at all (no weapons offence in a small force) is all zeros where observed, unknown where
    # not, rather than failing to mark the gaps.
    both = CellMonths.from_frames(counts, cells, [GROUP, "weapons"], coverage=ledger)
    weapons = both.counts["weapons"]
    assert weapons.dtype == float and np.nansum(weapons) == 0 and np.isnan(weapons[:, 2]).all()
