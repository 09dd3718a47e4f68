"""Baselines as registered MLflow models: the pyfunc forecasts what ml.baselines forecasts, carries a signature,
and the registry tells which method the champion alias points at."""

from __future__ import annotations

import h3
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature

from ml.baseline_model import BaselineForecaster, history_frame, history_panel
from ml.baselines import BASELINES
from ml.panel import Panel
from ml.promotion import decide
from ml.tracking import CHAMPION, champion_info, decision_tags, registered_name

MONTHS = [f"2024-{m:02d}" for m in range(1, 9)]


@pytest.fixture
def panel() -> Panel:
    """Two rings of resolution-9 cells around a point in Bedford, eight months of counts, one month unobserved."""
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(52.136, -0.467, 9), 2))
    ll = [h3.cell_to_latlng(c) for c in cells]
    dim = pd.DataFrame({
        "h3_cell": cells, "force": "bedfordshire", "centre_latitude": [p[0] for p in ll],
        "centre_longitude": [p[1] for p in ll], "area_km2": [h3.cell_area(c, "km^2") for c in cells],
        "lsoa_code": "E01000001",
        "neighbours_ring1": [",".join(sorted(h3.grid_ring(c, 1))) for c in cells],
        "neighbours_ring2": [",".join(sorted(h3.grid_ring(c, 2))) for c in cells]})
    rng = np.random.default_rng(5)
    rows = [{"h3_cell": c, "force": "bedfordshire", "month": m, "forecast_group": "theft",
             "incident_count": int(k)} for c in cells for m in MONTHS if (k := rng.poisson(1.5))]
    coverage = pd.DataFrame({"source": "police_uk", "force": "bedfordshire", "month": MONTHS,
                             "status": ["complete"] * 5 + ["missing"] + ["complete"] * 2})
    return Panel.from_frames(pd.DataFrame(rows), dim, coverage=coverage)


def test_each_baseline_model_forecasts_what_the_baseline_forecasts(panel):
    frame = history_frame(panel, "theft")
    assert frame["incident_count"].isna().sum() == panel.n_cells  # the unobserved month travels as NaN
    for method, fn in BASELINES.items():
        out = BaselineForecaster(method, "theft").predict(None, frame)
        assert out["h3_cell"].tolist() == list(panel.cells)
        np.testing.assert_allclose(out["predicted_count"], fn(panel, "theft", panel.n_months), rtol=1e-9,
                                   err_msg=method)


def test_absent_rows_are_zero_and_bad_history_is_refused(panel):
    frame = history_frame(panel, "theft")
    sparse_rows = frame[frame["incident_count"] != 0]
    # Every cell keeps at least one row (the unobserved month's NaN), so the same panel comes back.
    rebuilt = history_panel(sparse_rows, "theft")
    np.testing.assert_array_equal(np.nan_to_num(rebuilt.counts["theft"], nan=-1),
                                  np.nan_to_num(panel.counts["theft"], nan=-1))
    with pytest.raises(ValueError, match="missing incident_count"):
        history_panel(frame.drop(columns="incident_count"), "theft")
    with pytest.raises(ValueError, match="YYYY-MM"):
        history_panel(frame.assign(month="2024-13"), "theft")
    with pytest.raises(ValueError, match="not an H3 cell"):
        history_panel(frame.assign(h3_cell="nowhere"), "theft")
    with pytest.raises(ValueError, match="negative"):
        history_panel(frame.assign(incident_count=-1.0), "theft")
    with pytest.raises(ValueError, match="unknown baseline"):
        BaselineForecaster("oracle", "theft")


def test_a_registered_baseline_has_a_signature_and_takes_the_alias(panel, tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    frame = history_frame(panel, "theft")
    model = BaselineForecaster("kde", "theft")
    name = registered_name("theft")
    client = MlflowClient()
    with mlflow.start_run(experiment_id=exp) as legacy:
        mlflow.log_text("{}", "placeholder.json")
    # A version registered before baselines could win carries no method tag: it is the model.
    client.create_registered_model(name)
    old = client.create_model_version(name, f"runs:/{legacy.info.run_id}/placeholder", legacy.info.run_id)
    client.set_registered_model_alias(name, CHAMPION, old.version)
    assert champion_info("theft").method == "model"

    with mlflow.start_run(experiment_id=exp) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=model,
                                       signature=infer_signature(frame, model.predict(None, frame)),
                                       registered_model_name=name, pip_requirements=["pandas"])
    version = str(info.registered_model_version)
    scores = pd.DataFrame({"method": ["model", "kde"] * 3, "month": ["2024-06", "2024-06", "2024-07", "2024-07",
                                                                      "2024-08", "2024-08"],
                           "pei_star_5": [0.4, 0.5, 0.4, 0.6, 0.3, 0.5]})
    decision = decide(scores, previous=None)
    for k, v in decision_tags(decision, "kde").items():
        client.set_model_version_tag(name, version, k, v)
    client.set_registered_model_alias(name, CHAMPION, version)

    champ = champion_info("theft")
    assert (champ.version, champ.run_id, champ.method) == (version, run.info.run_id, "kde")
    mv = client.get_model_version(name, version)
    assert mv.tags["promotion_decision"] == "champion" and mv.tags["runner_up"] == "model"
    assert mv.tags["paired_test"] == "exact_sign_test" and mv.tags["months_compared"] == "2024-06,2024-07,2024-08"
    assert float(mv.tags["paired_test_p_value"]) == pytest.approx(1 / 8)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    assert [c.name for c in loaded.metadata.get_input_schema().inputs] == ["h3_cell", "month", "incident_count"]
    out = loaded.predict(frame)
    np.testing.assert_allclose(out["predicted_count"], BASELINES["kde"](panel, "theft", panel.n_months))


def test_the_dataset_schema_from_distinct_values_is_mlflows_schema_of_every_row():
    from mlflow.types.utils import _infer_schema

    from ml.tracking import dataset_schema

    rng = np.random.default_rng(2)
    n = 5_000
    frame = pd.DataFrame({
        "h3_cell": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "force": rng.choice(["x", "y"], n).astype(object),
        "note": pd.Series(rng.choice(["p", None], n), dtype=object),
        "incident_count": rng.integers(0, 9, n),
        "share": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        "flag": rng.random(n) < 0.5,
    })
    assert dataset_schema(frame) == _infer_schema(frame)
    assert dataset_schema(frame.head(0)) == _infer_schema(frame.head(0))


def test_the_dataset_digest_changes_with_the_rows_the_table_or_its_version():
    from ml.tracking import DatasetRef, dataset_digest

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"h3_cell": rng.choice(["a", "b"], 20_000).astype(object),
                          "incident_count": rng.integers(0, 9, 20_000)})
    ref = DatasetRef("file:///lake/gold/t", 4, frame)
    digest = dataset_digest(ref)
    assert digest == dataset_digest(DatasetRef("file:///lake/gold/t", 4, frame.copy()))
    assert len(digest) == 8  # MLflow's digest length
    changed_head = frame.copy()
    changed_head.loc[0, "incident_count"] += 1
    assert dataset_digest(DatasetRef("file:///lake/gold/t", 4, changed_head)) != digest
    assert dataset_digest(DatasetRef("file:///lake/gold/t", 5, frame)) != digest
    assert dataset_digest(DatasetRef("file:///lake/gold/u", 4, frame)) != digest
    assert dataset_digest(DatasetRef("file:///lake/gold/t", 4, frame.head(19_999))) != digest
