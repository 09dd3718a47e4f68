"""A lake with one force-month never delivered and one delivered in part, through the whole pipeline: the ledger
flags both, and the forecasts, the hot spot trends and the map treat them as missing, never as a fall in crime."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from crimelake import lake
from crimelake.config import Settings
from crimelake.simulate.gaps import Gap

pytestmark = [pytest.mark.integration]

FORCES = ["city-of-london", "bedfordshire"]
MISSING = Gap("bedfordshire", "2025-02", "missing")
PARTIAL = Gap("city-of-london", "2025-03", "partial", 0.35)


@pytest.fixture(scope="module")
def gappy(tmp_path_factory) -> Settings:
    from crimelake.pipeline import run_hotspot_tracking, run_landed, run_models, run_transform
    from crimelake.simulate import generate

    saved = dict(os.environ)
    try:
        os.environ["CRIMELAKE_FAIRNESS_MAX_RATIO"] = "100"
        # The first load's 18 months go through dbt six months at a time, as a long national history would.
        os.environ["CRIMELAKE_DBT_CHUNK_MONTHS"] = "6"
        settings = Settings.from_env(tmp_path_factory.mktemp("gaps") / "home").prepare()
        generate(settings.landing, seed=7, forces=FORCES, months=18, start="2024-01", gaps=[MISSING, PARTIAL])
        run_landed(settings)
        transform = run_transform(settings)
        assert transform.success, transform.failed_checks
        # Gaps are data, not errors: the ledger's checks warn and block nothing.
        assert any("coverage" in w for w in transform.warned_checks), transform.warned_checks
        (model_run,) = run_models(settings, ["all_crime"], workers=1)
        assert "ml/hotspot_model" in model_run.metadata, model_run.failed_checks
        from unittest import mock

        from ml.cell_months import CellMonths

        with mock.patch.object(CellMonths, "from_arrow", wraps=CellMonths.from_arrow) as laid_out:
            assert run_hotspot_tracking(settings).success
        # Its two assets (concentration, emerging hot spots) read the same versions: laid out once, shared.
        assert laid_out.call_count == 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return settings


def test_the_ledger_flags_exactly_the_gaps(gappy):
    cov = lake.read(gappy.gold("coverage")).to_pandas()
    street = cov[cov["source"] == "police_uk"].set_index(["force", "month"])["status"]
    assert street[(MISSING.force, MISSING.month)] == "missing"
    assert street[(PARTIAL.force, PARTIAL.month)] == "partial"
    others = street.drop([(MISSING.force, MISSING.month), (PARTIAL.force, PARTIAL.month)])
    assert (others == "complete").all(), others[others != "complete"]


def test_forecasting_masks_the_gaps_and_scores_around_them(gappy):
    from crimelake.forecasting import load_gold, panel_and_context
    from ml.backtest import backtest

    panel, _ = panel_and_context(load_gold(gappy))
    assert {(MISSING.force, MISSING.month), (PARTIAL.force, PARTIAL.month)} <= set(panel.missing)
    for gap in (MISSING, PARTIAL):
        t = panel.months.index(gap.month)
        mine = panel.force == gap.force
        assert np.isnan(panel.counts["all_crime"][mine, t]).all()
        assert not np.isnan(panel.counts["all_crime"][~mine, t]).any()
    res = backtest(panel, "all_crime", months=12, methods=["ewma", "last_month"])
    scored = set(res.per_month["month"])
    assert {MISSING.month, PARTIAL.month} <= scored
    # The model asset's forecast (staged beside the registry whether or not the gate promoted it): every cell of
    # the study area as of the forecast (a recorded crime in an observed month) gets one, the force with the
    # missing month included.
    preds = pd.read_parquet(gappy.home / "mlflow" / "staged" / "all_crime.parquet")
    known = panel.known_before(panel.n_months)
    assert len(preds) == known.sum() and set(preds["h3_cell"]) == set(panel.cells[known])
    assert set(preds["force"]) == set(FORCES) and not preds["predicted_count"].isna().any()


def test_hot_spot_trends_and_concentration_leave_the_gaps_out(gappy):
    emerging = lake.read(gappy.lake / "ml" / "emerging_hotspots").to_pandas()
    emerging = emerging[emerging["forecast_group"] == "all_crime"]
    # The 12-month window (2024-07 to 2025-06) holds both gaps: each force's series has 11 observed steps, and
    # its final step is still the last month.
    assert set(emerging["end_month"]) == {"2025-06"}
    for force in FORCES:
        mine = emerging[emerging["force"] == force]
        assert len(mine) and set(mine["observed_steps"]) == {11}, force
        assert set(mine["final_month"]) == {"2025-06"}, force
    conc = lake.read(gappy.lake / "ml" / "concentration").to_pandas()
    pairs = set(zip(conc["force"], conc["month"], strict=True))
    assert (MISSING.force, MISSING.month) not in pairs and (PARTIAL.force, PARTIAL.month) not in pairs
    assert (MISSING.force, PARTIAL.month) in pairs and (PARTIAL.force, MISSING.month) in pairs


def test_the_map_names_the_forces_without_data(gappy):
    from fastapi.testclient import TestClient

    from crimelake.serve.app import create_app

    with TestClient(create_app(gappy, refresh_seconds=0)) as client:
        meta = client.get("/api/meta").json()
        gaps = meta["no_data_forces"]
        assert [e["status"] for e in gaps[MISSING.month] if e["force"] == MISSING.force] == ["missing"]
        assert [e["status"] for e in gaps[PARTIAL.month] if e["force"] == PARTIAL.force] == ["partial"]
        layer = client.get("/api/layers/counts", params={"month": MISSING.month}).json()
        assert any(e["force"] == MISSING.force for e in layer["no_data_forces"])
