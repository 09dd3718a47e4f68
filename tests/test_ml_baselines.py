"""The panel and the baseline forecasters on tiny H3 grids with known answers."""

import h3
import numpy as np
import pandas as pd
import pytest

from ml.baselines import BASELINES, ewma, kernel_density, last_month, prospective_hotspot, rolling_mean
from ml.panel import Panel
from tests.panel_factories import CENTRE, disk, gold_frames, make_panel


def single_event_panel(k: int = 3, n_months: int = 4, at: tuple[int, int] | None = None) -> Panel:
    """One incident in the centre cell, in month ``at[1]`` (default the last month)."""
    cells = disk(k)
    m = np.zeros((len(cells), n_months))
    m[cells.index(CENTRE), at[1] if at else n_months - 1] = 1
    return make_panel({"all_crime": m}, cells)


# --- panel ---------------------------------------------------------------------------------------------


def test_panel_pivots_counts_and_neighbours():
    cells = disk(2)
    rng = np.random.default_rng(1)
    m = rng.poisson(2.0, (len(cells), 5)).astype(float)
    p = make_panel({"all_crime": m, "asb": m * 2}, cells)
    assert list(p.cells) == cells and p.months == ["2022-01", "2022-02", "2022-03", "2022-04", "2022-05"]
    np.testing.assert_array_equal(p.counts["all_crime"], m)
    np.testing.assert_array_equal(p.counts["asb"], 2 * m)
    c = cells.index(CENTRE)
    assert p.ring1[c].nnz == 6 and p.ring2[c].nnz == 12
    # A ring-1 neighbour sum is one matrix product.
    ring = [cells.index(n) for n in h3.grid_ring(CENTRE, 1)]
    assert (p.ring1 @ m[:, 0])[c] == m[ring, 0].sum()
    # British National Grid metres: resolution-9 neighbours are a few hundred metres apart.
    d = np.linalg.norm(p.xy[ring] - p.xy[c], axis=1)
    assert ((d > 250) & (d < 450)).all()
    assert p.xy[c, 0] == pytest.approx(545_000, abs=5_000) and p.xy[c, 1] == pytest.approx(258_000, abs=5_000)
    assert p.month_label(5) == "2022-06"


def test_panel_errors_are_clear():
    cells = disk(1)
    fct, dim = gold_frames({"all_crime": np.ones((7, 3))}, cells)
    with pytest.raises(ValueError, match="unknown force"):
        Panel.from_frames(fct, dim, force="atlantis")
    with pytest.raises(ValueError, match="empty panel"):
        Panel.from_frames(fct.iloc[:0], dim)
    with pytest.raises(ValueError, match="unknown forecast group"):
        Panel.from_frames(fct, dim).group_counts("burglary")


def test_forces_keep_every_month_and_mask_what_one_did_not_deliver():
    a, b = disk(1), disk(1, h3.latlng_to_cell(53.2, -2.9, 9))
    fa, da = gold_frames({"all_crime": np.ones((7, 4))}, a, force="cambridgeshire")
    fb, db = gold_frames({"all_crime": np.ones((7, 3))}, b, force="cheshire", start="2022-02")
    p = Panel.from_frames(pd.concat([fa, fb]), pd.concat([da, db]))
    assert p.months == ["2022-01", "2022-02", "2022-03", "2022-04"] and p.missing == [("cheshire", "2022-01")]
    cheshire = p.force == "cheshire"
    assert np.isnan(p.counts["all_crime"][cheshire, 0]).all() and not p.observed[cheshire, 0].any()
    assert (p.counts["all_crime"][~cheshire, 0] == 1).all() and p.observed[:, 1:].all()
    assert Panel.from_frames(pd.concat([fa, fb]), pd.concat([da, db]), force="cheshire").n_cells == 7


# --- baselines -----------------------------------------------------------------------------------------


def test_last_month_and_rolling_means():
    cells = disk(1)
    m = np.arange(7 * 14, dtype=float).reshape(7, 14)
    p = make_panel({"all_crime": m}, cells)
    np.testing.assert_array_equal(last_month(p, "all_crime", 5), m[:, 4])
    np.testing.assert_allclose(rolling_mean(3)(p, "all_crime", 5), m[:, 2:5].mean(axis=1))
    np.testing.assert_allclose(BASELINES["rolling_12"](p, "all_crime", 14), m[:, 2:14].mean(axis=1))
    # Shorter history than the window: the mean of what exists.
    np.testing.assert_allclose(BASELINES["rolling_12"](p, "all_crime", 2), m[:, :2].mean(axis=1))
    with pytest.raises(ValueError):
        last_month(p, "all_crime", 0)


def test_ewma_weights_halve_every_halflife():
    cells = disk(1)
    m = np.zeros((7, 3))
    m[:, 0], m[:, 2] = 4.0, 1.0
    p = make_panel({"all_crime": m}, cells)
    # Ages 2, 1, 0 with half-life 1: weights 1/4, 1/2, 1 over a sum of 7/4.
    expected = (4.0 * 0.25 + 1.0 * 1.0) / 1.75
    np.testing.assert_allclose(ewma(1.0)(p, "all_crime", 3), expected)


def test_kde_conserves_the_total_and_spreads_to_neighbours():
    p = single_event_panel(k=4)
    cells = list(p.cells)
    pred = kernel_density(150.0, months=1)(p, "all_crime", p.n_months)
    assert pred.sum() == pytest.approx(1.0)
    c = cells.index(CENTRE)
    ring1 = [cells.index(n) for n in h3.grid_ring(CENTRE, 1)]
    ring2 = [cells.index(n) for n in h3.grid_ring(CENTRE, 2)]
    assert pred[c] > pred[ring1].max() > 0
    assert pred[ring1].min() > pred[ring2].max()
    # Wider kernels keep less at home.
    wide = kernel_density(400.0, months=1)(p, "all_crime", p.n_months)
    assert wide[c] < pred[c] and wide.sum() == pytest.approx(1.0)
    # The default averages the last three months: one incident becomes a third.
    assert BASELINES["kde"](p, "all_crime", p.n_months).sum() == pytest.approx(1 / 3)


def test_prospective_weights_decay_with_distance_and_time():
    recent = single_event_panel(k=3, n_months=4, at=(0, 3))
    stale = single_event_panel(k=3, n_months=4, at=(0, 0))
    cells = list(recent.cells)
    c = cells.index(CENTRE)
    ring1 = [cells.index(n) for n in h3.grid_ring(CENTRE, 1)]
    ring2 = [cells.index(n) for n in h3.grid_ring(CENTRE, 2)]
    fn = prospective_hotspot(400.0)
    a = fn(recent, "all_crime", 4)
    # Distance: weight 1 at home, about 1/2 one cell away, nothing beyond 400 m (ring 2 is ~600 m away).
    assert a[c] > a[ring1].min() > 0
    assert a[ring1].mean() / a[c] == pytest.approx(0.5, abs=0.05)
    assert (a[ring2] == 0).all()
    # Time: the surface is rescaled to a count, so compare two events within one panel, far apart in space:
    # one month ago (weight 1/2) against two months ago (weight 1/3).
    mixed_cells = np.zeros((len(cells), 4))
    mixed_cells[c, 3] = 1  # one month ago, centre
    far = cells.index(sorted(h3.grid_ring(CENTRE, 3))[0])
    mixed_cells[far, 2] = 1  # two months ago, far away
    m = fn(make_panel({"all_crime": mixed_cells}, disk(3)), "all_crime", 4)
    assert m[c] / m[far] == pytest.approx((1 / 2) / (1 / 3))
    # Outside the two-month window nothing counts.
    assert fn(stale, "all_crime", 4).sum() == 0


def test_every_baseline_ignores_the_target_month_and_later():
    cells = disk(3)
    rng = np.random.default_rng(7)
    m = rng.poisson(1.5, (len(cells), 16)).astype(float)
    p = make_panel({"all_crime": m}, cells)
    future = m.copy()
    future[:, 10:] = rng.poisson(9.0, (len(cells), 6))
    q = make_panel({"all_crime": future}, cells)
    assert set(BASELINES) == {"last_month", "rolling_3", "rolling_12", "ewma", "kde", "prospective"}
    for name, fn in BASELINES.items():
        a, b = fn(p, "all_crime", 10), fn(q, "all_crime", 10)
        assert a.shape == (len(cells),) and (a >= 0).all(), name
        np.testing.assert_array_equal(a, b, err_msg=name)
        # Count-valued: every baseline predicts about the recent monthly total.
        assert a.sum() == pytest.approx(m[:, :10].sum(axis=0).mean(), rel=0.25), name
