"""Promotion rule: a new version becomes champion only when it beats the champion and the best baseline."""

from __future__ import annotations

import math

from ml.tracking import decide_promotion


def test_promoted_when_it_beats_baseline_and_there_is_no_champion():
    d = decide_promotion(0.85, None, ("ewma", 0.80))
    assert d.promoted
    assert d.reasons == ["beats the best baseline ewma: pei_star_5 0.8500 > 0.8000", "no current champion"]


def test_not_promoted_when_the_best_baseline_is_as_good():
    d = decide_promotion(0.80, None, ("kde", 0.80))
    assert not d.promoted
    assert "does not beat the best baseline kde" in d.reasons[0]


def test_not_promoted_when_the_champion_is_better():
    d = decide_promotion(0.85, 0.86, ("ewma", 0.80))
    assert not d.promoted
    assert d.reasons[1] == "does not beat the current champion: 0.8500 <= 0.8600"


def test_a_failed_gate_blocks_promotion_and_is_named():
    d = decide_promotion(0.9, 0.8, ("ewma", 0.7), gates={"fairness": False})
    assert not d.promoted
    assert "gate fairness: failed" in d.reasons


def test_undefined_metric_is_never_promoted():
    d = decide_promotion(math.nan, None, ("ewma", 0.7))
    assert not d.promoted and "undefined" in d.reasons[0]
