"""Forecasting through Dagster and MLflow on small simulated data: experiments with the model beside every
baseline, a registered model with its promotion decision, versioned predictions, and `crimelake forecast`."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from crimelake import lake
from crimelake.cli import app
from crimelake.pipeline import run_landed, run_models, run_transform
from crimelake.simulate import generate

pytestmark = [pytest.mark.integration]


@pytest.fixture
def gold(settings):
    # No planted interventions: the gate's outcome below is a property of this lake as it is.
    generate(settings.landing, seed=3, forces=["city-of-london", "bedfordshire"], months=16, incidents=250,
             defect_rate=0.0, interventions=0)
    run_landed(settings)
    assert run_transform(settings).success
    return settings


def test_models_are_tracked_gated_and_forecast(gold):
    """On this small lake the model loses to a baseline: the baseline becomes champion, the gate passes and its
    forecast is published; run again, the champion's method keeps the alias unless the paired test says otherwise,
    and its new version (this run's data) serves."""
    import numpy as np

    from crimelake.forecasting import current_inputs
    from ml.baselines import BASELINES

    settings = gold
    (run,) = run_models(settings, ["all_crime"])
    md = run.metadata["ml/hotspot_model"]
    assert run.success and run.failed_checks == [] and run.warned_checks == [], md["promotion_reasons"]
    method = md["champion_method"]
    assert method in BASELINES and not md["promoted"], md["promotion_reasons"]
    decision = md["promotion"]
    assert decision["champion"] == method and decision["previous"] is None and decision["new_version"]
    # The champion has the best mean of the methods that passed every gate.
    eligible = [m for m, v in decision["means"].items() if all(decision["gates"].get(m, {}).values())]
    assert decision["means"][method] == max(decision["means"][m] for m in eligible)
    assert "no current champion: the best mean pei_star_5 wins outright" in md["promotion_reasons"]
    assert any(r.startswith("gate fairness:") for r in md["promotion_reasons"])

    mlflow.set_tracking_uri(settings.mlflow_uri)
    client = MlflowClient()
    exp = client.get_experiment_by_name("crimelake-forecast-all_crime")
    runs = client.search_runs([exp.experiment_id])
    methods = sorted(r.data.tags["method"] for r in runs)
    assert methods == sorted(["model", "last_month", "rolling_3", "rolling_12", "ewma", "kde", "prospective"])
    # Every method scored on the same months, and every method audited for fairness.
    assert len({r.data.tags["backtest_months"] for r in runs}) == 1
    assert all(r.data.tags["fairness_gate"] in ("passed", "failed") for r in runs)
    model_run = next(r for r in runs if r.data.tags["method"] == "model")
    assert model_run.info.run_id == md["mlflow_run_id"]
    assert "pei_star_5" in model_run.data.metrics
    # City of London has only data.police.uk: two months ahead of the last complete month, with 90% intervals.
    assert md["horizon"] == 2 and all(r.data.params["horizon"] == "2" for r in runs)
    assert all(0 < r.data.metrics["coverage_90"] <= 1 for r in runs)
    assert float(model_run.data.params["dispersion"]) >= 0
    inputs = model_run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.name.startswith("fct_cell_month_counts@v")
    # Every method's run names the same dataset, read in the backtest.
    for r in runs:
        [logged] = client.get_run(r.info.run_id).inputs.dataset_inputs
        assert logged.dataset.digest == inputs[0].dataset.digest
        assert {t.key: t.value for t in logged.tags}["mlflow.data.context"] == "backtest"
    artifacts = {a.path for a in client.list_artifacts(model_run.info.run_id)}
    assert {"feature_importance.json", "pai_by_coverage.png", "promotion.json", "model_card.md", "fairness.md",
            "fairness.json"} <= artifacts
    card = mlflow.artifacts.download_artifacts(run_id=model_run.info.run_id, artifact_path="model_card.md")
    text = Path(card).read_text()
    for heading in ("## Intended use", "## Misuse", "## Data and period", "## Metrics against the baselines",
                    "## Champion", "## Fairness", "## Known limitations"):
        assert heading in text

    # Both the model and the winning baseline are versions of the group's model, with signatures; the alias is
    # on the baseline's.
    name = "crimelake-hotspots-all_crime"
    champ = client.get_model_version_by_alias(name, "champion")
    version = str(champ.version)
    assert version == md["champion_version"] and champ.tags["method"] == method
    assert champ.tags["promotion_decision"] == "champion" and champ.tags["runner_up"] == str(decision["runner_up"])
    if decision["test"] is None:  # one method alone passed the gates: nothing to test it against
        assert champ.tags["paired_test_p_value"] == "" and champ.tags["paired_test"] == "none"
    else:
        assert float(champ.tags["paired_test_p_value"]) == pytest.approx(decision["test"]["p_value"])
    assert champ.tags["months_compared"] == ",".join(decision["months_compared"])
    champ_run = client.get_run(champ.run_id)
    assert champ_run.data.tags["method"] == method
    assert "promotion.json" in {a.path for a in client.list_artifacts(champ.run_id)}
    model_version = client.get_model_version(name, md["model_version"])
    assert model_version.tags["method"] == "model" and model_version.tags["promotion_decision"] == "not champion"
    for v in (champ, model_version):
        info = mlflow.models.get_model_info(f"models:/{name}/{v.version}")
        assert info.signature is not None and info.signature.inputs is not None

    # The published forecast is the baseline's, computed from the same panel.
    preds = lake.read(settings.lake / "ml" / "predictions").to_pandas()
    _, panel, _ = current_inputs(settings)
    # The study area as of the forecast: every cell with any crime in the months read.
    known = panel.known_before(panel.n_months)
    cells = int(known.sum())
    assert cells <= lake.read(settings.gold("dim_cells")).num_rows
    assert len(preds) == cells and preds["prediction_id"].is_unique
    assert preds["target_month"].unique().tolist() == ["2025-06"] and (preds["horizon"] == 2).all()
    assert (preds["lower_90"] <= preds["upper_90"]).all() and (preds["upper_90"] >= 0).all()
    assert preds["hotspot_5pct"].sum() == max(1, -(-cells * 5 // 100))
    assert (preds["model_alias"] == "champion").all() and set(preds["model_version"]) == {version}
    assert run.metadata["ml/predictions"]["champion_method"] == method
    expected = pd.Series(BASELINES[method](panel, "all_crime", panel.n_months)[known], index=panel.cells[known])
    np.testing.assert_allclose(preds.set_index("h3_cell")["predicted_count"].loc[expected.index], expected,
                               rtol=1e-6)

    # Again on the same data: the champion's method is re-scored on the same months; it keeps the alias unless a
    # challenger wins the paired test, and the alias moves to this run's version either way.
    (again,) = run_models(settings, ["all_crime"])
    md2 = again.metadata["ml/hotspot_model"]
    assert again.success and again.failed_checks == [], md2["promotion_reasons"]
    d2 = md2["promotion"]
    assert d2["previous"] == method and d2["months_compared"] == decision["months_compared"]
    # Same data, same scores: the champion still has the best mean, so no challenger can win the test.
    assert md2["champion_method"] == method and not md2["champion_changed"] and d2["winner"] == method
    assert md2["champion_version"] != version
    newest = lake.read(settings.lake / "ml" / "predictions").to_pandas()
    assert set(newest["model_version"]) == {version, md2["champion_version"]}


def test_forecast_command_uses_only_earlier_data(gold, tmp_path):
    settings = gold
    out = tmp_path / "f.csv"
    r = CliRunner().invoke(app, ["forecast", "--as-of", "2025-03", "--group", "theft", "--out", str(out),
                                 "--home", str(settings.home)])
    assert r.exit_code == 0, r.output
    frame = pd.read_csv(out)
    assert {"h3_cell", "h3_resolution", "forecast_group", "predicted_count", "rank", "prediction_id"} <= set(frame)
    # Two months ahead by default here (City of London has only data.police.uk): data up to 2025-01.
    assert frame["data_months"].iloc[0].endswith("..2025-01") and (frame["horizon"] == 2).all()
    assert sorted(frame["rank"]) == list(range(1, len(frame) + 1))
    assert {"lower_90", "upper_90"} <= set(frame) and (frame["lower_90"] <= frame["upper_90"]).all()
    one = tmp_path / "f1.csv"
    r1 = CliRunner().invoke(app, ["forecast", "--as-of", "2025-03", "--group", "theft", "--horizon", "1", "--out",
                                  str(one), "--home", str(settings.home)])
    assert r1.exit_code == 0, r1.output
    frame1 = pd.read_csv(one)
    assert frame1["data_months"].iloc[0].endswith("..2025-02") and (frame1["horizon"] == 1).all()
    bad = CliRunner().invoke(app, ["forecast", "--as-of", "2030-01", "--out", str(out), "--home", str(settings.home)])
    assert bad.exit_code == 2 and "data before it ends at 2025-04" in bad.output
    preds = lake.read(settings.lake / "ml" / "predictions").to_pandas()
    assert set(preds["prediction_id"]) == set(frame["prediction_id"]) | set(frame1["prediction_id"])

    bt = CliRunner().invoke(app, ["backtest", "--group", "asb", "--force", "bedfordshire", "--home",
                                  str(settings.home)])
    assert bt.exit_code == 0, bt.output
    for method in ("model", "last_month", "rolling_3", "rolling_12", "ewma", "kde", "prospective"):
        assert f"\n│ {method}" in bt.output or f"│ {method} " in bt.output, method
    assert "force-level backtests are tracked, not registered" in bt.output


def test_trace_reaches_the_raw_extract_lines_and_reports_a_broken_link(gold, tmp_path):
    import json

    settings = gold
    out = tmp_path / "f.parquet"
    r = CliRunner().invoke(app, ["forecast", "--as-of", "2025-05", "--out", str(out), "--home", str(settings.home)])
    assert r.exit_code == 0, r.output
    frame = pd.read_parquet(out)
    pid = frame.sort_values("rank")["prediction_id"].iloc[0]  # the top cell: it has incidents behind it

    ok = CliRunner().invoke(app, ["trace", pid, "--json", "--home", str(settings.home)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    assert doc["verified"] is True
    hops = {h["name"]: h for h in doc["hops"]}
    assert hops["model"]["data"]["run_id"] == frame["mlflow_run_id"].iloc[0]
    assert "fct_cell_month_counts" in hops["feature tables"]["data"]
    counts = hops["feature rows"]["data"]["counts"]
    # Forecast two months ahead: the features read up to 2025-03.
    assert max(counts) == "2025-03" and min(counts) <= "2024-05"
    assert "int_incidents_deduplicated" in hops["dbt models"]["data"]["models"]
    files = hops["extract files"]["data"]["files"]
    assert files and all(f["status"] == "verified" for f in files.values())
    name, first = next(iter(files.items()))
    # The recorded lines are real lines of the landed file.
    text = (settings.home / name).read_bytes().decode("cp1252" if "-rms-" in name else "utf-8").splitlines()
    assert len(text) >= max(first["lines"])

    # Change a landed file: the chain is reported broken, naming the file.
    path = settings.home / name
    path.write_bytes(path.read_bytes() + b"\n")
    broken = CliRunner().invoke(app, ["trace", pid, "--home", str(settings.home)])
    assert broken.exit_code == 1
    assert "BROKEN" in broken.output and name.rsplit("/", 1)[-1] in broken.output

    missing = CliRunner().invoke(app, ["trace", "nope", "--home", str(settings.home)])
    assert missing.exit_code == 2 and "not in" in missing.output

    from crimelake.audit import entries

    log = [(e["action"], e["target"]) for e in entries(settings)]
    assert ("export", str(out)) in log
    assert log.count(("view", pid)) == 2


def test_models_retrain_when_the_feature_tables_change(settings):
    import dagster as dg

    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    node = graph.get(dg.AssetKey(["ml", "hotspot_model"]))
    assert node.automation_condition is not None
    assert dg.AssetKey(["gold", "fct_cell_month_counts"]) in node.parent_keys
    checks = {k.name for k in graph.get_check_keys_for_assets({node.key})}
    assert checks == {"promotion_gate"}


def test_groups_train_side_by_side_and_a_champion_keeps_forecasting(settings, monkeypatch):
    """Two groups in two worker processes; run again with a fairness gate no method passes: the alias does not
    move, and the champions' earlier versions still publish the forecast."""
    # The map's demo lake: two years of two forces, where the model beats every baseline for both groups (the
    # fairness gate has too few deciles with two forces and is tested on its own).
    monkeypatch.setenv("CRIMELAKE_FAIRNESS_MAX_RATIO", "100")
    generate(settings.landing, seed=7, forces=["city-of-london", "bedfordshire"], months=24)
    run_landed(settings)
    assert run_transform(settings).success
    first = run_models(settings, ["all_crime", "asb"], workers=2)
    assert [r.group for r in first] == ["all_crime", "asb"]
    promoted = [r for r in first if r.metadata["ml/hotspot_model"]["promoted"]]
    assert promoted, [r.metadata["ml/hotspot_model"]["promotion_reasons"] for r in first]
    # A fairness gate no candidate can pass: the new versions are not promoted, and the champions still forecast.
    monkeypatch.setenv("CRIMELAKE_FAIRNESS_MAX_RATIO", "0.01")
    again = run_models(settings, [r.group for r in promoted], workers=2)
    preds = lake.read(settings.lake / "ml" / "predictions").to_pandas()
    for before, after in zip(promoted, again, strict=True):
        md = after.metadata["ml/hotspot_model"]
        # No method passes the fairness gate: the alias stays, the gate warns and predictions still publish.
        assert after.success and not md["promoted"], md["promotion_reasons"]
        assert after.warned_checks == ["ml/hotspot_model:promotion_gate"] and after.failed_checks == []
        fairness = next(r for r in md["promotion_reasons"] if r.startswith("gate fairness:"))
        assert fairness.startswith("gate fairness: failed by ") and "model" in fairness and "passed" not in fairness
        assert md["champion_version"] == before.metadata["ml/hotspot_model"]["champion_version"]
        written = after.metadata["ml/predictions"]
        # The second run's forecast comes from the first run's model version, the champion.
        assert written["model_version"] == str(before.metadata["ml/hotspot_model"]["model_version"])
        mine = preds[preds["forecast_group"] == after.group]
        assert len(mine) == 2 * written["dagster/row_count"]
        assert set(mine["model_version"]) == {written["model_version"]}


def test_a_fit_gets_the_cores_the_model_workers_leave(monkeypatch):
    import os

    import crimelake.pipeline as pipeline
    from ml.model import train_threads

    seen = []
    monkeypatch.setattr(pipeline, "_run_groups",
                        lambda settings, groups, on_group, workers: seen.append((workers, train_threads())) or [])
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 2)
    monkeypatch.delenv("CRIMELAKE_TRAIN_THREADS", raising=False)
    pipeline.run_models(None, ["all_crime", "asb"], workers=1)
    pipeline.run_models(None, ["all_crime", "asb"], workers=2)
    assert seen == [(1, 2), (2, 1)]
    assert "CRIMELAKE_TRAIN_THREADS" not in os.environ and train_threads() == 1
    # A user's own setting wins; a bad one is refused by name.
    monkeypatch.setenv("CRIMELAKE_TRAIN_THREADS", "3")
    pipeline.run_models(None, ["all_crime"], workers=1)
    assert seen[-1] == (1, 3)
    monkeypatch.setenv("CRIMELAKE_TRAIN_THREADS", "two")
    with pytest.raises(ValueError, match="CRIMELAKE_TRAIN_THREADS"):
        train_threads()
