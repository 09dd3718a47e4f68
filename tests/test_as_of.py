"""No hindsight: the forecast of month M made as of its origin is the same whatever happens after the origin, cells
first seen later included (the study area is the one known then)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelake.forecasting import GoldInputs, as_of_forecast, horizon_for
from ml.panel import month_add
from tests.panel_factories import disk, gold_frames

START = "2022-01"
N_MONTHS = 20


def _gold(counts: dict[str, np.ndarray], cells: list[str], stop: pd.DataFrame) -> GoldInputs:
    fct, dim = gold_frames(counts, cells, start=START)
    fct = fct[fct["incident_count"] > 0]  # the gold table is sparse: no row where nothing was recorded
    frames = {
        "fct_cell_month_counts": fct,
        "dim_cells": dim,
        "fct_area_quarter_indicators": pd.DataFrame(columns=["lsoa_code", "quarter"]),
        "fct_stop_search_cell_months": stop,
        "fct_outcomes": pd.DataFrame(columns=["h3_cell", "outcome_month", "outcome_type"]),
    }
    return GoldInputs(frames, dict.fromkeys(frames, 1), {})


def _world(seed: int = 0):
    cells = disk(4)
    inner = set(disk(3))
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.8, 1.5, size=(len(cells), 1))
    counts = {g: rng.poisson(rate * s, size=(len(cells), N_MONTHS)).astype(float)
              for g, s in (("all_crime", 1.0), ("asb", 0.5))}
    # The outer ring has no crime at all until late: those cells are not on the map early on.
    outer = np.array([c not in inner for c in cells])
    for m in counts.values():
        m[outer, :17] = 0
    months = [month_add(START, i) for i in range(N_MONTHS)]
    stop = pd.DataFrame([(c, mo, int(rng.integers(0, 3)), 0, 0) for c in cells for mo in months],
                        columns=["h3_cell", "month", "searches", "searches_for_weapons", "arrests"])
    return counts, cells, outer, stop


@pytest.mark.parametrize("horizon", [1, 2])
def test_forecast_as_of_m_ignores_everything_after_its_origin(horizon):
    counts, cells, outer, stop = _world()
    as_of = month_add(START, 15)  # index 15; the forecast reads up to index 15 - horizon
    base = as_of_forecast(_gold(counts, cells, stop), as_of, "all_crime", horizon=horizon)
    assert base.month == as_of and base.horizon == horizon
    assert base.model.train_months[-1] == month_add(as_of, -horizon)

    later = {g: m.copy() for g, m in counts.items()}
    rng = np.random.default_rng(9)
    first_unread = 16 - horizon
    for m in later.values():
        m[:, first_unread:] = rng.poisson(4.0, size=m[:, first_unread:].shape)
    # New cells appear in the months not read: at the origin they were on no one's map.
    for m in later.values():
        m[outer, first_unread] = 3
    stop_later = stop.copy()
    stop_later.loc[stop_later["month"] >= month_add(START, first_unread), "searches"] += 4
    again = as_of_forecast(_gold(later, cells, stop_later), as_of, "all_crime", horizon=horizon)
    pd.testing.assert_frame_equal(base.predictions, again.predictions)
    assert not base.predictions["h3_cell"].isin(np.array(cells)[outer]).any()

    # The check can fail: a change inside the months read does move the forecast.
    earlier = {g: m.copy() for g, m in counts.items()}
    earlier["all_crime"][~outer, first_unread - 1] += 5
    moved = as_of_forecast(_gold(earlier, cells, stop), as_of, "all_crime", horizon=horizon)
    a = base.predictions.set_index("h3_cell")["predicted_count"]
    b = moved.predictions.set_index("h3_cell")["predicted_count"].reindex(a.index)
    assert not np.allclose(a, b)


def test_horizon_setting(monkeypatch):
    counts, cells, _, stop = _world()
    gold = _gold(counts, cells, stop)
    monkeypatch.delenv("CRIMELAKE_HORIZON", raising=False)
    assert horizon_for(gold) == 2  # no ledger: data.police.uk timing
    ledger = pd.DataFrame({"source": ["police_uk", "force_rms_ho"], "force": "cambridgeshire",
                           "month": "2022-01", "status": "complete"})
    gold.frames["coverage"] = ledger
    assert horizon_for(gold) == 1  # the force's own records export
    gold.frames["coverage"] = ledger.iloc[:1]
    assert horizon_for(gold) == 2
    monkeypatch.setenv("CRIMELAKE_HORIZON", "3")
    assert horizon_for(gold) == 3
    monkeypatch.setenv("CRIMELAKE_HORIZON", "0")
    with pytest.raises(ValueError, match="CRIMELAKE_HORIZON must be at least 1"):
        horizon_for(gold)
