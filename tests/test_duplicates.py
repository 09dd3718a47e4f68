"""The search for repeated unique keys: the keyed search finds exactly what hashing every value whole finds."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from crimelake.ingest.quarantine import _first_occurrence, _first_occurrence_exact, _text_keys


def _values(seed: int) -> list[str | None]:
    """Ids, and the awkward text a keyed search could get wrong: values sharing their first, middle and last
    bytes and their length, values shorter than a key word, empty text, non-ASCII text, nulls; repeats planted."""
    rng = random.Random(seed)
    out: list[str | None] = []
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.4:
            out.append("".join(rng.choice("0123456789abcdef") for _ in range(64)))
        elif kind < 0.6:  # same length, same first, middle and last eight bytes, differing elsewhere
            out.append("aaaaaaaa" + rng.choice("xy") + "bbbbbbbbcccccccc" + rng.choice("xy") + "dddddddd")
        elif kind < 0.75:
            out.append("".join(rng.choice("ab") for _ in range(rng.randint(0, 7))))
        elif kind < 0.85:
            out.append(rng.choice(["Rue de l'Église", "Ysgol Gymraeg", "é", "", "ŵŷ" * 5]))
        elif kind < 0.9:
            out.append(None)
        else:
            out.append(out[rng.randrange(len(out))] if out else None)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("large", [False, True])
def test_keyed_search_agrees_with_whole_value_hashing(seed, large):
    arr = pa.array(_values(seed), pa.large_string() if large else pa.string())
    first, valid = _first_occurrence(arr)
    want_first, want_valid = _first_occurrence_exact(arr)
    assert (valid == want_valid).all()
    assert (first == want_first).all()
    # The test data has repeats of every kind, so both paths had work to do.
    assert (first[valid] != np.flatnonzero(valid)).sum() > 100


def test_keyed_search_on_a_slice_and_on_chunks():
    values = _values(7)
    arr = pa.array(values, pa.string())
    part = arr.slice(500, 2000)  # an offset into shared buffers
    assert (_first_occurrence(part)[0] == _first_occurrence_exact(part)[0]).all()
    chunked = pa.chunked_array([arr.slice(0, 1000), arr.slice(1000)])
    assert (_first_occurrence(chunked)[0] == _first_occurrence_exact(arr)[0]).all()


def test_equal_values_get_equal_keys_wherever_they_lie_in_the_buffer():
    values = ["abc", "x" * 20, "abc", "", "x" * 20, "é" * 9]
    keys = _text_keys(pa.array(values + values[::-1], pa.string()))
    for i, v in enumerate(values):
        j = len(values) + len(values) - 1 - i
        assert keys[i] == keys[j], v
    assert len(set(keys[:2].tolist())) == 2
