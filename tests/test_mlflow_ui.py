"""What a model owner sees in the MLflow UI, read back through MlflowClient after a backtest and an as-of forecast
made as `crimelake models` and `crimelake forecast` make them: the experiment opens on its runs (its kind) with a
description, the model and the baselines carry the same metric keys and only their own params, and every logged
model has a signature named as its inputs and a small input example."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from crimelake import forecasting
from crimelake.forecasting import GoldInputs, forecast_as_of, panel_and_context, run_backtest
from ml.baseline_model import COLUMNS as BASELINE_INPUTS
from ml.panel import month_add
from ml.tracking import (
    BY_MONTH,
    COUNTS_BY_MONTH,
    CUSTOM_MODEL_DEVELOPMENT,
    EXAMPLE_CELLS,
    EXAMPLE_ROWS,
    EXPERIMENT_KIND_TAG,
    HEADLINE_METRICS,
    NOTE_TAG,
    experiment_description,
    experiment_id,
    experiment_link,
    experiment_name,
    registered_name,
)
from tests.panel_factories import disk, gold_frames

START = "2022-01"
N_MONTHS = 16
GROUP = "all_crime"


@pytest.fixture
def small_gold(settings, monkeypatch) -> GoldInputs:
    """Sixteen months of Poisson counts on 37 cells, served to forecasting in place of the lake's gold tables."""
    cells = disk(3)
    rng = np.random.default_rng(11)
    rate = rng.gamma(0.8, 1.5, size=(len(cells), 1))
    counts = {g: rng.poisson(rate * s, size=(len(cells), N_MONTHS)).astype(float)
              for g, s in ((GROUP, 1.0), ("asb", 0.5))}
    fct, dim = gold_frames(counts, cells, start=START)
    frames = {
        "fct_cell_month_counts": fct[fct["incident_count"] > 0],
        "dim_cells": dim,
        "fct_area_quarter_indicators": pd.DataFrame(columns=["lsoa_code", "quarter"]),
        "fct_stop_search_cell_months": pd.DataFrame(columns=["h3_cell", "month", "searches",
                                                             "searches_for_weapons", "arrests"]),
        "fct_outcomes": pd.DataFrame(columns=["h3_cell", "outcome_month", "outcome_type"]),
    }
    gold = GoldInputs(frames, dict.fromkeys(frames, 1), {n: f"/lake/gold/{n}" for n in frames})
    panel, context = panel_and_context(gold)
    monkeypatch.setattr(forecasting, "current_inputs", lambda s, force=None: (gold, panel, context))
    monkeypatch.setattr(forecasting, "load_gold", lambda s, version_of=None: gold)
    return gold


def _client(settings) -> MlflowClient:
    mlflow.set_tracking_uri(settings.mlflow_uri)
    return MlflowClient()


def test_backtest_runs_read_back_as_a_model_owner_needs_them(settings, small_gold):
    # The model is held out by a gate, so a baseline becomes champion and both kinds of version are registered.
    result, nxt, tracked, _ = run_backtest(settings, GROUP, months=3, horizon=1, gates={"model": {"held": False}})
    client = _client(settings)

    exp = client.get_experiment(tracked.experiment_id)
    assert exp.name == experiment_name(GROUP)
    assert exp.tags[EXPERIMENT_KIND_TAG] == CUSTOM_MODEL_DEVELOPMENT == "custom_model_development"
    note = exp.tags[NOTE_TAG]
    assert note == experiment_description(GROUP)
    for words in (GROUP, "backtest", "forecast-<YYYY-MM>", "baseline-<method>", "model_card.md", "PEI*", "PAI",
                  "hit rate", *HEADLINE_METRICS):
        assert words in note, words

    assert experiment_link("http://127.0.0.1:5000/", exp.experiment_id) == (
        f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}?workflowType=machine_learning")

    # The model and every baseline: the same headline keys, and a baseline has no hyperparameters.
    runs = {r.data.tags["method"]: r for r in client.search_runs([tracked.experiment_id])}
    assert set(runs) == {str(m) for m in result.summary.index}
    model = runs.pop("model")
    assert model.data.params["method"] == "model" and "max_depth" in model.data.params
    for method, run in runs.items():
        assert set(HEADLINE_METRICS) <= set(run.data.metrics) & set(model.data.metrics), method
        assert set(run.data.params) == {"method", "horizon"}, method
        assert run.data.params["method"] == method
    # The value the UI shows is the backtest mean; the months are a series of their own.
    assert model.data.metrics["pei_star_5"] == pytest.approx(result.summary.loc["model", "pei_star_5"])
    months = result.per_month[result.per_month["method"] == "model"].sort_values("month")
    for key, metric in ((f"{BY_MONTH}pei_star_5", "pei_star_5"), (f"{COUNTS_BY_MONTH}deviance", "deviance")):
        history = sorted(client.get_metric_history(model.info.run_id, key), key=lambda m: m.step)
        assert [m.value for m in history] == pytest.approx(months[metric].tolist()), key
    # The chart view's first section (prefixes in name order) holds the headline metrics and nothing else.
    sections = sorted({k.split("/")[0] for k in model.data.metrics if "/" in k})
    assert {k.split("/")[1] for k in model.data.metrics if k.startswith(sections[0] + "/")} == set(HEADLINE_METRICS)
    assert "model_card.md" in {a.path for a in client.list_artifacts(model.info.run_id)}

    # The model's version: inputs named as the features, a few feature rows as its example.
    name = registered_name(GROUP)
    uri = f"models:/{name}/{tracked.model_version}"
    info = mlflow.models.get_model_info(uri)
    assert info.signature.inputs.input_names() == nxt.model.feature_names
    example = Model.load(uri).load_input_example(uri)
    assert list(example.columns) == nxt.model.feature_names and len(example) == EXAMPLE_ROWS
    assert not {"h3_cell", "force", "lsoa_code", "month"} & set(example.columns)

    # The champion baseline's version: its own inputs, the whole history of a few cells as example.
    assert tracked.champion.method != "model"
    uri = f"models:/{name}/{tracked.champion.version}"
    assert mlflow.models.get_model_info(uri).signature.inputs.input_names() == list(BASELINE_INPUTS)
    example = Model.load(uri).load_input_example(uri)
    assert list(example.columns) == list(BASELINE_INPUTS)
    assert example["h3_cell"].nunique() == EXAMPLE_CELLS and len(example) == EXAMPLE_CELLS * N_MONTHS


def test_an_as_of_forecast_run_logs_its_model_with_a_signature(settings, small_gold):
    as_of = month_add(START, 12)
    forecast_as_of(settings, as_of, GROUP, horizon=1)
    client = _client(settings)
    exp = client.get_experiment_by_name(experiment_name(GROUP))
    assert exp.tags[EXPERIMENT_KIND_TAG] == CUSTOM_MODEL_DEVELOPMENT
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == f"forecast-{as_of}" and run.data.tags["kind"] == "forecast"
    uri = f"runs:/{run.info.run_id}/model"
    names = mlflow.models.get_model_info(uri).signature.inputs.input_names()
    regressor = mlflow.xgboost.load_model(uri)
    assert names == list(regressor.get_booster().feature_names) and "lag_1" in names
    assert list(Model.load(uri).load_input_example(uri).columns) == names


def test_an_existing_experiment_gains_its_kind_and_description_and_keeps_a_person_s(settings):
    client = _client(settings)
    old = client.create_experiment(experiment_name("asb"), tags={"forecast_group": "asb"})
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags

    assert experiment_id("asb") == old
    tags = client.get_experiment(old).tags
    assert tags[EXPERIMENT_KIND_TAG] == CUSTOM_MODEL_DEVELOPMENT and tags[NOTE_TAG] == experiment_description("asb")

    # A description written in the UI stays; the kind is put back.
    client.set_experiment_tag(old, NOTE_TAG, "Owned by the Bedfordshire analysts.")
    client.set_experiment_tag(old, EXPERIMENT_KIND_TAG, "genai_development")
    experiment_id("asb")
    tags = client.get_experiment(old).tags
    assert tags[NOTE_TAG] == "Owned by the Bedfordshire analysts."
    assert tags[EXPERIMENT_KIND_TAG] == CUSTOM_MODEL_DEVELOPMENT
