"""Intervention impact evaluation: the record, the comparison and ring geometry, the WDQ by hand, the estimate on
hand-made series, and the interval's coverage over simulated interventions with a known effect."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from benchmarks.interventions import summary, trials
from crimelake.simulate.interventions import simulate_interventions
from ml.interventions import (
    RESULT_COLUMNS,
    Intervention,
    did,
    displacement_ring,
    evaluate,
    exclusion_zone,
    select_comparison,
    wdq,
    wdq_reading,
)
from tests.panel_factories import CENTRE, disk, make_panel

PANELS = 20  # x 8 interventions per scenario: about 160, seeded


def record(**kw) -> Intervention:
    fields = {"id": "iv-1", "kind": "hot_spot_patrol", "area": {CENTRE}, "force": "cambridgeshire",
              "start": "2024-01", "end": "2024-06", "agency": "Cambridgeshire Constabulary", "groups": ("violence",)}
    return Intervention(**{**fields, **kw})


@pytest.mark.parametrize("bad, message", [
    ({"kind": "drones"}, "unknown kind"),
    ({"groups": ("burglary",)}, "target groups"),
    ({"groups": ()}, "target groups"),
    ({"area": set()}, "no cells"),
    ({"area": {"not-a-cell"}}, "resolution-9"),
    ({"area": {h3.cell_to_parent(CENTRE, 8)}}, "resolution-9"),
    ({"start": "2024-13"}, "'YYYY-MM'"),
    ({"end": "2023-12"}, "before it starts"),
    ({"id": ""}, "needs an id"),
])
def test_bad_records_are_refused_with_the_reason(bad, message):
    with pytest.raises(ValueError, match=message):
        record(**bad)


def test_ring_is_the_k_disk_less_the_area():
    area = set(h3.grid_disk(CENTRE, 1))
    assert displacement_ring({CENTRE}, 1) == frozenset(h3.grid_ring(CENTRE, 1))
    assert len(displacement_ring({CENTRE}, 2)) == 18
    assert displacement_ring(area, 1) == frozenset(h3.grid_ring(CENTRE, 2))
    assert exclusion_zone(area, 1) == frozenset(h3.grid_disk(CENTRE, 3))
    with pytest.raises(ValueError, match="k >= 1"):
        displacement_ring(area, 0)


def test_wdq_matches_the_formula_worked_by_hand():
    # A 100 -> 70, B 50 -> 60, C 200 -> 200: success 0.35 - 0.50 = -0.15, buffer 0.30 - 0.25 = +0.05,
    # WDQ = 0.05 / -0.15 = -1/3: crime moved into the buffer.
    assert wdq(a0=100, a1=70, b0=50, b1=60, c0=200, c1=200) == pytest.approx(-1 / 3)
    assert wdq_reading(-1 / 3, success=-0.15) == "displacement"
    # A 100 -> 40, B 50 -> 20, C 200 -> 100: success 0.40 - 0.50 = -0.10, buffer 0.20 - 0.25 = -0.05, WDQ = 0.5.
    assert wdq(a0=100, a1=40, b0=50, b1=20, c0=200, c1=100) == pytest.approx(0.5)
    assert wdq_reading(0.5, success=-0.1) == "diffusion of benefits"
    assert wdq_reading(0.5, success=0.1) == "no success in the treated area"
    assert np.isnan(wdq(100, 70, 50, 60, 0, 200))
    assert np.isnan(wdq(100, 100, 50, 60, 200, 200))  # the treated area did not change relative to the control
    assert wdq_reading(float("nan")) == "undefined"


def test_did_is_the_ratio_of_ratios_and_its_interval_widens_with_noise():
    during = np.arange(24) >= 18
    c = np.full(24, 100.0)
    a = np.where(during, 15.0, 30.0)
    noisy = a + np.tile([6.0, -6.0], 12)
    flat = did(a + np.tile([1.0, -1.0], 12), c, during)
    wide = did(noisy, c, during)
    assert flat["rate_ratio"] == pytest.approx(0.5)
    assert flat["prevented_per_month"] == pytest.approx(15.0)
    assert wide["rate_ratio_hi"] - wide["rate_ratio_lo"] > flat["rate_ratio_hi"] - flat["rate_ratio_lo"]
    assert wide["rate_ratio_lo"] < 0.5 < wide["rate_ratio_hi"]
    assert wide["prevented_per_month_lo"] < 15.0 < wide["prevented_per_month_hi"]
    # Too few crimes expected to say anything: no estimate, and a reason.
    sparse = did(np.where(during, 0.0, 0.3), c, during)
    assert np.isnan(sparse["rate_ratio"]) and "fewer than 10" in sparse["note"]
    with pytest.raises(ValueError, match="dispersion"):
        did(a, c, during, dispersion="robust")


def test_comparison_cells_never_touch_the_area_and_come_from_its_force():
    panel, interventions, _ = simulate_interventions(5, 8)
    others = exclusion_zone(interventions[1].area, 1)
    for iv in interventions:
        comp = select_comparison(panel, iv, iv.groups[0], ring=1, exclude=others if iv is not interventions[1] else ())
        assert len(comp.cells) == 5 * len(iv.area) == len(set(comp.cells))
        assert not set(comp.cells) & exclusion_zone(iv.area, 1)
        assert min(h3.grid_distance(c, a) for c in comp.cells for a in iv.area) >= 3  # area, ring, then adjacent
        assert set(panel.force[comp.rows]) == {iv.force}
        if iv is not interventions[1]:
            assert not set(comp.cells) & others


def test_evaluate_on_a_gold_panel_finds_a_halving_and_skips_unobserved_months():
    cells = disk(5)
    rng = np.random.default_rng(3)
    counts = rng.poisson(8.0, size=(len(cells), 30)).astype(float)
    centre = cells.index(CENTRE)
    counts[centre, 24:] = rng.poisson(4.0, size=6)
    panel = make_panel({"violence": counts}, cells, start="2022-01")
    panel.counts["violence"][:, 15] = np.nan  # a force-month that never arrived, in the baseline
    out = evaluate(panel, record(start="2024-01", end="2024-12"))
    assert list(out.columns) == RESULT_COLUMNS
    row = out.iloc[0]
    assert row["baseline_months"] == 11 and row["during_months"] == 6  # NaN month out; months past the panel out
    assert row["rate_ratio_lo"] < row["rate_ratio"] < row["rate_ratio_hi"] < 1
    assert 0.3 < row["rate_ratio"] < 0.75
    assert row["n_ring_cells"] == 6 and row["n_comparison_cells"] == 5
    with pytest.raises(ValueError, match="no month"):
        evaluate(panel, record(start="2026-01", end="2026-06"))
    with pytest.raises(ValueError, match="matching window"):
        evaluate(panel, record(start="2022-09", end="2022-12"))
    with pytest.raises(ValueError, match="none of its cells"):
        evaluate(panel, record(area={h3.latlng_to_cell(51.5, -0.1, 9)}))


@pytest.fixture(scope="module")
def effect_trials():
    return trials(PANELS, seed=1, effect=-0.2)


def test_ninety_percent_interval_covers_a_known_effect_nine_times_in_ten(effect_trials):
    s = summary(effect_trials)
    assert s["estimated"] >= 100
    assert 0.85 <= s["coverage_90"] <= 0.95
    # The same estimates with a plain Poisson interval are too sure of themselves: the check above can fail.
    assert summary(trials(PANELS, seed=1, effect=-0.2, dispersion="poisson"))["coverage_90"] < 0.85


@pytest.fixture(scope="module")
def null_trials():
    return trials(PANELS, seed=2, effect=0.0)


def test_without_an_effect_the_interval_excludes_no_change_at_most_one_time_in_ten(null_trials):
    s = summary(null_trials)
    assert s["estimated"] >= 100
    assert s["excludes_no_change"] <= 0.10
    assert s["pre_trend_flagged"] <= 0.15


def test_injected_displacement_gives_a_negative_wdq_in_most_cases(effect_trials):
    moved = summary(trials(PANELS, seed=1, effect=-0.2, displacement=0.5))
    assert moved["wdq_read"] >= 80
    assert moved["wdq_below_zero"] > 0.5
    assert moved["wdq_below_zero"] > summary(effect_trials)["wdq_below_zero"] + 0.1


def test_pre_trend_check_flags_a_treated_area_on_a_trend_of_its_own(null_trials):
    diverging = summary(trials(PANELS, seed=2, effect=0.0, diverging_trend=0.03))
    parallel = summary(null_trials)
    assert diverging["pre_trend_flagged"] > parallel["pre_trend_flagged"] + 0.2


@pytest.mark.parametrize("shift_sd, low, high", [(0.0, 1.0, 1.4), (0.4, 2.5, 10.0)])
def test_placebo_cells_widen_the_interval_when_levels_shift_for_good(shift_sd, low, high):
    # Every cell's level jumps once, at random, when the intervention starts: noise no month-to-month residual
    # shows. Placebo cells see it and the interval widens; without the jumps it stays as the model gives it.
    cells = disk(7)
    rng = np.random.default_rng(11)
    jump = np.exp(rng.normal(0, shift_sd, (len(cells), 1))) * (np.arange(36) >= 24) + (np.arange(36) < 24)
    counts = rng.poisson(20.0 * jump).astype(float)
    out = evaluate(make_panel({"theft": counts}, cells), record(groups=("theft",), start="2024-01", end="2024-12"))
    row = out.iloc[0]
    assert row["placebos"] >= 40
    assert low <= row["calibration"] <= high
