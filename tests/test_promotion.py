"""The champion decision on hand-made per-month scores: a paired test on the same months, not a raw mean."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.promotion import SIGN, WILCOXON, decide, paired_test

MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]


def scores(**by_method) -> pd.DataFrame:
    """Per-month rows as the backtest writes them: one per method and month."""
    return pd.DataFrame([{"method": m, "month": month, "pei_star_5": float(v)}
                         for m, values in by_method.items() for month, v in zip(MONTHS, values, strict=True)])


BASE = np.array([0.50, 0.52, 0.48, 0.55, 0.51, 0.49, 0.53, 0.50, 0.47, 0.54, 0.52, 0.50])
# Month by month the challenger is ahead by 0.02 and behind by 0.018: a mean margin of 0.001, no consistency.
NOISE = np.array([0.02, -0.018] * 6)


def test_a_tiny_mean_margin_does_not_unseat_the_champion():
    per_month = scores(ewma=BASE, model=BASE + NOISE, kde=BASE - 0.05)
    d = decide(per_month, previous="ewma")
    assert d.means["model"] - d.means["ewma"] == pytest.approx(0.001)
    assert d.champion == "ewma" and d.new_version and not d.changed and not d.promoted
    assert (d.winner, d.runner_up) == ("ewma", "model")
    assert d.mean_margin == pytest.approx(-0.001)
    expected = stats.wilcoxon(NOISE, alternative="greater")
    assert d.test.name == WILCOXON and d.test.n_nonzero == 12 and d.test.months == MONTHS
    assert d.test.statistic == expected.statistic and d.test.p_value == pytest.approx(expected.pvalue)
    assert d.test.p_value > 0.05
    assert any(r.startswith("ewma stays champion against model") for r in d.reasons)


def test_the_same_tiny_margin_wins_outright_without_a_champion():
    d = decide(scores(ewma=BASE, model=BASE + NOISE), previous=None)
    assert d.champion == "model" and d.promoted and d.changed
    assert d.runner_up == "ewma" and d.mean_margin == pytest.approx(0.001)
    assert "no current champion: the best mean pei_star_5 wins outright" in d.reasons


def test_a_consistent_win_replaces_the_champion():
    gain = np.array([0.004, 0.010, 0.002, 0.006, 0.012, 0.001, 0.008, 0.003, 0.009, 0.005, 0.007, 0.011])
    d = decide(scores(model=BASE, kde=BASE + gain, ewma=BASE - 0.01), previous="model")
    assert d.champion == "kde" and d.changed and not d.promoted and d.new_version
    assert (d.winner, d.runner_up) == ("kde", "model")
    assert d.mean_margin == pytest.approx(gain.mean())
    # All twelve months won with distinct margins: W+ = 1 + ... + 12 and the exact p-value is 2^-12.
    assert d.test.name == WILCOXON and d.test.statistic == 78.0
    assert d.test.p_value == pytest.approx(2.0**-12)


def test_alpha_is_configurable():
    gain = np.array([0.01] * 9 + [-0.001, -0.002, -0.003])
    per_month = scores(model=BASE, kde=BASE + gain)
    p = stats.wilcoxon(gain, alternative="greater").pvalue
    assert 0.001 < p < 0.05
    assert decide(per_month, previous="model").champion == "kde"
    assert decide(per_month, previous="model", alpha=0.001).champion == "model"
    with pytest.raises(ValueError, match="alpha"):
        decide(per_month, previous="model", alpha=1.5)


def test_few_non_zero_differences_use_the_exact_sign_test():
    # Identical scores in eight months (both flagged the same cells): four differences are left.
    gain = np.array([0.0] * 8 + [0.01, 0.02, 0.01, 0.03])
    t = paired_test(pd.Series(BASE + gain, index=MONTHS, name="kde"), pd.Series(BASE, index=MONTHS, name="ewma"))
    assert t.name == SIGN and t.n_nonzero == 4 and t.statistic == 4
    assert t.p_value == pytest.approx(stats.binomtest(4, 4, 0.5, alternative="greater").pvalue) == 1 / 16
    d = decide(scores(ewma=BASE, kde=BASE + gain), previous="ewma")
    assert d.champion == "ewma"
    none = paired_test(pd.Series(BASE, index=MONTHS, name="a"), pd.Series(BASE, index=MONTHS, name="b"))
    assert none.n_nonzero == 0 and none.p_value == 1.0


def test_months_without_a_score_are_left_out_of_the_pairs():
    gain = np.full(12, 0.01)
    champ, chall = BASE.copy(), BASE + gain
    champ[3] = chall[3] = np.nan  # no crime that month: PEI* is undefined for every method
    d = decide(scores(model=champ, kde=chall), previous="model")
    assert d.test.months == [m for i, m in enumerate(MONTHS) if i != 3]
    assert d.champion == "kde"


def test_a_method_that_fails_a_gate_cannot_become_champion():
    gain = np.full(12, 0.02)
    per_month = scores(model=BASE + gain, ewma=BASE, kde=BASE - 0.01)
    d = decide(per_month, previous="ewma", gates={"model": {"fairness": False}, "ewma": {"fairness": True},
                                                  "kde": {"fairness": True}})
    assert d.champion == "ewma" and d.runner_up == "kde"
    assert "gate fairness: passed by ewma, kde; failed by model" in d.reasons
    # The champion's own method failing a gate hands the alias to the best method that passes, outright.
    d = decide(per_month, previous="ewma", gates={"ewma": {"fairness": False}})
    assert d.champion == "model" and d.changed
    assert any("ewma failed gate fairness" in r for r in d.reasons)


def test_when_no_method_qualifies_the_alias_stays():
    per_month = scores(model=BASE, ewma=BASE)
    failed = {"model": {"fairness": False}, "ewma": {"fairness": False}}
    d = decide(per_month, previous="model", gates=failed)
    assert d.champion == "model" and not d.new_version and not d.promoted
    assert "gate fairness: failed by model, ewma" in d.reasons
    first = decide(per_month, previous=None, gates=failed)
    assert first.champion is None and not first.new_version


def test_undefined_scores_never_win():
    nan = np.full(12, np.nan)
    d = decide(scores(model=nan, ewma=BASE), previous=None)
    assert d.champion == "ewma" and math.isnan(d.means["model"])


def test_the_decision_is_json_with_the_months_compared():
    d = decide(scores(ewma=BASE, model=BASE + NOISE), previous="ewma")
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["champion"] == "ewma" and doc["runner_up"] == "model" and doc["test"]["name"] == WILCOXON
    assert doc["months_compared"] == MONTHS and doc["changed"] is False


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="missing pei_star_5"):
        decide(pd.DataFrame({"method": ["a"], "month": ["2024-01"]}), previous=None)
    twice = pd.concat([scores(ewma=BASE), scores(ewma=BASE)])
    with pytest.raises(ValueError, match="scored twice"):
        decide(twice, previous=None)


def test_the_model_name_is_the_backtests():
    from ml import backtest, promotion

    assert promotion.MODEL == backtest.MODEL
