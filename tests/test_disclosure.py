"""Disclosure control: no published count below the threshold, none recoverable by differencing, no records."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from crimelake.disclosure import check_public, protect, round_to_base


def test_small_counts_are_suppressed_and_the_rest_rounded():
    frame = pd.DataFrame({"area": list("abcdef"), "n": [0, 1, 4, 5, 12, 13]})
    out = protect(frame, ["n"], min_count=5)
    assert out["n"].isna().tolist() == [False, True, True, False, False, False]
    assert out["n_suppressed"].tolist() == [False, True, True, False, False, False]
    assert out["n"].dropna().astype(int).tolist() == [0, 5, 10, 15]
    assert check_public(out, ["n"], min_count=5) == []


def test_record_level_columns_are_refused():
    with pytest.raises(ValueError, match="record-level columns"):
        protect(pd.DataFrame({"incident_id": ["x"], "n": [9]}), ["n"])
    assert check_public(pd.DataFrame({"_source_line": [3], "n": [10]}), ["n"]) == ["record-level column _source_line"]


def test_check_catches_small_and_unrounded_counts():
    bad = pd.DataFrame({"n": [3.0, 12.0]})
    assert check_public(bad, ["n"], min_count=5) == ["n: 1 counts below 5", "n: counts not rounded to 5"]


def test_differencing_published_totals_cannot_recover_a_suppressed_count():
    rng = np.random.default_rng(0)
    for _ in range(200):
        parts = rng.integers(5, 60, size=4)
        hidden = int(rng.integers(1, 5))  # a small count that must stay hidden
        total = parts.sum() + hidden
        published_parts = round_to_base(parts)
        published_total = round_to_base([total])[0]
        # Every true value consistent with what is published: parts and total each within 2 of their rounding.
        candidates = set()
        for deltas in itertools.product(range(-2, 3), repeat=1):
            t = published_total + deltas[0]
            low = t - (published_parts + 2).sum()
            high = t - (published_parts - 2).sum()
            candidates |= {v for v in range(1, 5) if low <= v <= high}
        assert hidden in candidates and len(candidates) >= 2
