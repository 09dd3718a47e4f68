"""Hot-spot and count metrics on small cases worked out by hand."""

import math

import numpy as np
import pytest

from ml.metrics import calibration, hit_rate, n_flagged, pai, pei_star, poisson_deviance, score, top_cells

# Ten cells: the prediction ranks cells 0, 1, 2, ... but the crime landed mostly in cells 1, 4 and 9.
PRED = np.array([9.0, 8, 7, 6, 5, 4, 3, 2, 1, 0])
OBS = np.array([0.0, 5, 1, 0, 3, 0, 0, 0, 0, 1])  # total 10


def test_hit_rate_counts_crime_in_the_top_cells():
    # 20% of 10 cells = cells 0 and 1: 0 + 5 of 10 incidents.
    assert hit_rate(PRED, OBS, 0.2) == pytest.approx(0.5)
    # 50%: cells 0-4 hold 0 + 5 + 1 + 0 + 3 = 9.
    assert hit_rate(PRED, OBS, 0.5) == pytest.approx(0.9)


def test_flags_break_ties_by_cell_order_and_scores_give_ties_fractional_credit():
    flat = np.ones(10)
    assert list(top_cells(flat, 0.3)) == [0, 1, 2]
    # All ten tied, three flagged: each cell is flagged with probability 3/10, so the expected hit rate is 0.3
    # (a stable sort would have credited cells 0-2, holding 6 of 10; reversed storage order, cells 7-9, 1 of 10).
    assert hit_rate(flat, OBS, 0.3) == pytest.approx(0.3)
    assert hit_rate(flat, OBS[::-1], 0.3) == pytest.approx(0.3)
    # Equal predictions in the middle: cell 3 precedes cell 4 in the flags because it comes first.
    tied = np.array([5.0, 4, 3, 3, 3, 0, 0, 0, 0, 0])
    assert list(top_cells(tied, 0.4)) == [0, 1, 2, 3]
    # Cells 0 and 1 are in for sure (0 + 5); one of the three tied at 3 (cells 2, 3, 4 hold 1 + 0 + 3) is in too.
    assert hit_rate(tied, OBS, 0.4) == pytest.approx((5 + (1 + 0 + 3) * 2 / 3) / 10)
    # PEI*: the best four cells (1, 4, 2, 9) hold 10.
    assert pei_star(tied, OBS, 0.4) == pytest.approx((5 + 4 * 2 / 3) / 10)
    # Area share of the flagged set is expected too: cells 0, 1 (2 each) plus 2/3 of cells 2-4 (1 each).
    area = np.array([2.0, 2, 1, 1, 1, 1, 1, 1, 1, 1])
    assert pai(tied, OBS, 0.4, area) == pytest.approx(hit_rate(tied, OBS, 0.4) / ((4 + 3 * 2 / 3) / 12))


def test_fractional_credit_is_the_mean_over_random_tie_breaks():
    rng = np.random.default_rng(3)
    pred, obs = rng.poisson(0.7, 200).astype(float), rng.poisson(1.0, 200).astype(float)
    draws = []
    for _ in range(4000):
        order = rng.permutation(200)  # a random storage order decides the stable tie-break
        top = order[top_cells(pred[order], 0.05)]
        draws.append(obs[top].sum() / obs.sum())
    assert hit_rate(pred, obs, 0.05) == pytest.approx(np.mean(draws), abs=3 * np.std(draws) / np.sqrt(len(draws)))


def test_flagged_cells_round_and_never_drop_to_zero():
    assert n_flagged(10, 0.01) == 1
    assert n_flagged(1000, 0.05) == 50
    assert n_flagged(127, 0.05) == 6
    with pytest.raises(ValueError):
        n_flagged(10, 0.0)


def test_pai_divides_hit_rate_by_area_share():
    # Equal areas: (5/10) / (2/10) = 2.5.
    assert pai(PRED, OBS, 0.2) == pytest.approx(2.5)
    # The two flagged cells are twice as large as the others: a/A = 4/12, PAI = 0.5 / (1/3) = 1.5.
    area = np.array([2.0, 2, 1, 1, 1, 1, 1, 1, 1, 1])
    assert pai(PRED, OBS, 0.2, area) == pytest.approx(1.5)


def test_pei_star_compares_with_the_best_set_of_the_same_size():
    # Flagged cells 0, 1 caught 5; the best two cells (1 and 4) hold 8.
    assert pei_star(PRED, OBS, 0.2) == pytest.approx(5 / 8)
    # A perfect ranking scores 1 at every coverage.
    for c in (0.1, 0.2, 0.5):
        assert pei_star(OBS, OBS, c) == pytest.approx(1.0)
    # The reversed ranking flags cells 9 and 8: 1 of a possible 8.
    assert pei_star(-PRED, OBS, 0.2) == pytest.approx(1 / 8)


def test_poisson_deviance_matches_the_formula():
    # y=0, mu=1: 2 * (0 - (0 - 1)) = 2; y=3, mu=2: 2 * (3 ln 1.5 - 1).
    expected = (2.0 + 2 * (3 * math.log(1.5) - 1)) / 2
    assert poisson_deviance([1.0, 2.0], [0.0, 3.0]) == pytest.approx(expected)
    assert poisson_deviance([2.0, 3.0], [2.0, 3.0]) == pytest.approx(0.0)
    # A zero forecast where crime happened is clipped: large but finite.
    d = poisson_deviance([0.0], [2.0])
    assert math.isfinite(d) and d > 40


def test_no_observed_crime_gives_nan_not_a_crash():
    obs = np.zeros(10)
    assert math.isnan(hit_rate(PRED, obs, 0.1))
    assert math.isnan(pai(PRED, obs, 0.1))
    assert math.isnan(pei_star(PRED, obs, 0.1))
    assert math.isnan(calibration(PRED, obs)["ratio"])
    assert math.isfinite(poisson_deviance(PRED, obs))


def test_calibration_overall_and_by_decile():
    pred = np.arange(20, dtype=float)
    obs = np.arange(20, dtype=float) / 2
    cal = calibration(pred, obs)
    assert cal["ratio"] == pytest.approx(2.0)
    deciles = cal["deciles"]
    assert list(deciles["decile"]) == list(range(1, 11))
    assert (deciles["cells"] == 2).all()
    # Top decile: cells 18 and 19, predicted 18.5 on average against 9.25 observed.
    top = deciles.iloc[-1]
    assert top["mean_pred"] == pytest.approx(18.5) and top["mean_obs"] == pytest.approx(9.25)


def test_score_has_every_metric_at_every_coverage():
    s = score(np.linspace(1, 0, 200), np.r_[np.full(10, 3.0), np.zeros(190)])
    for name in ("hit_rate", "pai", "pei_star"):
        assert {f"{name}_1", f"{name}_5", f"{name}_10"} <= s.keys()
    # 2 flagged cells at 1% hold 6 of 30 incidents, and 6 is the best any 2 cells could do.
    assert s["hit_rate_1"] == pytest.approx(0.2)
    assert s["pei_star_1"] == pytest.approx(1.0)
    assert s["pai_1"] == pytest.approx(0.2 / 0.01)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        hit_rate([1.0, 2.0], [1.0], 0.1)
    with pytest.raises(ValueError):
        poisson_deviance([np.nan], [1.0])


def test_top_cells_by_partition_matches_a_full_stable_sort():
    rng = np.random.default_rng(7)
    for n in (1, 7, 100, 5000):
        for pred in (rng.poisson(1.0, n).astype(float), rng.random(n), np.zeros(n)):
            for c in (0.01, 0.05, 0.1, 0.5, 1.0):
                expected = np.argsort(-pred, kind="stable")[: n_flagged(n, c)]
                np.testing.assert_array_equal(top_cells(pred, c), expected)
