"""Forecasting assets: per forecast group, a backtested and tracked model with a promotion gate, and the
versioned predictions for next month. Thin: the work is in `crimelake.forecasting` and `ml/`."""

import dagster as dg

from crimelake import forecasting
from orchestration.lib.resources import LakeResource

GROUPS = list(forecasting.GROUPS)
group_partitions = dg.StaticPartitionsDefinition(GROUPS)
ML_GROUP = "ml"

# Retrain when the feature tables gain a month: every gold input, any of its monthly partitions.
GOLD_DEPS = [dg.AssetDep(dg.AssetKey(["gold", name]), partition_mapping=dg.AllPartitionMapping())
             for name in forecasting.GOLD_INPUTS]


@dg.asset(
    key=["ml", "hotspot_model"],
    deps=GOLD_DEPS,
    partitions_def=group_partitions,
    group_name=ML_GROUP,
    kinds={"xgboost", "mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[dg.AssetCheckSpec(
        "promotion_gate", asset=dg.AssetKey(["ml", "hotspot_model"]), blocking=True,
        description="Passes when the group has a champion from this backtest, model or baseline: the current "
                    "champion's method keeps the alias (its version trained on the latest data) unless another "
                    "method beats it by a one-sided paired test on PEI* at 5% over the same backtest months. Warns "
                    "when no method passed the fairness gate and the champion's older version still serves; fails, "
                    "blocking predictions, when the group has no champion at all.")],
    description="Per forecast group (partition): a rolling-origin backtest over the last 12 months, at the forecast "
                "horizon (CRIMELAKE_HORIZON; 2 months ahead of the last complete month for data.police.uk timing), "
                "of the model and "
                "every baseline (last month, rolling 3 and 12, EWMA, kernel density, prospective hotspotting), each a "
                "run in MLflow experiment crimelake-forecast-<group>; the model retrained on all months and registered "
                "as crimelake-hotspots-<group>, and the champion alias given to the backtest's winner (a baseline "
                "winner is registered there too, as a pyfunc model).",
)
def hotspot_model(context: dg.AssetExecutionContext, lake: LakeResource):
    from ml.predictions import ModelRef
    from ml.tracking import registered_name

    settings = lake.settings()
    group = context.partition_key
    result, nxt, tracked, gold = forecasting.run_backtest(settings, group, progress=context.log.info)
    d = tracked.decision
    champion = tracked.champion
    if champion is not None and d.new_version:
        passed, severity = True, dg.AssetCheckSeverity.ERROR
        # This run's champion version: its forecast is staged beside the registry so predictions need not redo it.
        frame = forecasting.champion_frame(settings, group, champion, nxt)
    else:
        passed = False
        severity = dg.AssetCheckSeverity.WARN if champion else dg.AssetCheckSeverity.ERROR
        frame = forecasting.predictions_frame(nxt, group, gold, ModelRef(registered_name(group),
                                                                          tracked.model_version, None,
                                                                          tracked.model_run_id))
    staged = settings.home / "mlflow" / "staged" / f"{group}.parquet"
    forecasting.write_frame(frame, staged)
    summary = result.summary
    from crimelake import lineage

    lineage.emit(settings, f"ml/hotspot_model/{group}", context.run_id,
                 inputs=[lineage.delta(settings, settings.gold(n), v) for n, v in sorted(gold.versions.items())],
                 outputs=[lineage.Dataset(f"mlflow://{settings.mlflow_uri}", f"crimelake-hotspots-{group}",
                                          champion.version if champion else tracked.model_version)])
    decision = d.to_dict()
    others = summary.drop(index="model")["pei_star_5"].dropna()
    best_baseline = str(others.idxmax()) if len(others) else None
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": tracked.model_run_id,
            "mlflow_experiment_id": tracked.experiment_id,
            "baseline_run_ids": dg.MetadataValue.json(tracked.baseline_run_ids),
            "model_version": tracked.model_version,
            "promoted": d.promoted,
            "champion_method": champion.method if champion else None,
            "champion_version": champion.version if champion else None,
            "champion_changed": d.changed,
            "promotion_reasons": dg.MetadataValue.json(d.reasons),
            "promotion": dg.MetadataValue.json(decision),
            "horizon": result.horizon,
            "pei_star_5_model": float(summary.loc["model", "pei_star_5"]),
            "coverage_90_model": float(summary.loc["model", "coverage_90"]),
            "pei_star_5_best_baseline": float(others.max()) if len(others) else float("nan"),
            "best_baseline": best_baseline,
            "backtest": dg.MetadataValue.md(result.to_markdown(
                columns=["pai_1", "pai_5", "pai_10", "pei_star_1", "pei_star_5", "pei_star_10", "hit_rate_5",
                         "deviance", "calibration", "coverage_90"])),
            "feature_table_versions": dg.MetadataValue.json(gold.versions),
            "fairness": dg.MetadataValue.md(tracked.fairness_markdown or "no deprivation table: audit not run"),
            "staged_forecast": dg.MetadataValue.path(str(staged)),
        },
        check_results=[dg.AssetCheckResult(
            check_name="promotion_gate", passed=passed, severity=severity,
            metadata={"reasons": dg.MetadataValue.json(d.reasons),
                      "decision": dg.MetadataValue.json(decision),
                      "champion_method": champion.method if champion else None,
                      "champion_version": champion.version if champion else None},
        )],
    )


@dg.asset(
    key=["ml", "predictions"],
    deps=[dg.AssetKey(["ml", "hotspot_model"])],
    partitions_def=group_partitions,
    group_name=ML_GROUP,
    # Groups train side by side, but one Delta table takes their appends one at a time.
    pool="ml_predictions",
    kinds={"deltalake", "mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
    description="The forecast for every cell of the study area, the horizon's months after the last complete one, "
                "appended to the Delta table "
                "`lake/ml/predictions` (earlier forecasts are kept): prediction_id, cell, force, group, target month, "
                "horizon, predicted count with its 90% interval (lower_90, upper_90), rank, percentile, hotspot flags at 1% and 5%, model name, version, alias, MLflow run "
                "and the Delta versions of the feature tables. Made by the group's champion, model or baseline.",
)
def predictions(context: dg.AssetExecutionContext, lake: LakeResource):
    import pandas as pd

    from ml.tracking import champion_info

    settings = lake.settings()
    group = context.partition_key
    staged = pd.read_parquet(settings.home / "mlflow" / "staged" / f"{group}.parquet")
    forecasting.setup_mlflow(settings)
    champ = champion_info(group)
    if champ is None:
        raise dg.Failure(f"no champion for {group}: nothing may publish predictions")
    if not (staged["mlflow_run_id"] == champ.run_id).all():
        context.log.info(f"this run's versions did not take the alias; forecasting with champion version "
                         f"{champ.version} ({champ.method}) on the latest data")
        staged = forecasting.champion_forecast(settings, group)
    version_written = forecasting.append_predictions(settings, staged)
    from crimelake import lineage

    model = lineage.Dataset(f"mlflow://{settings.mlflow_uri}", f"crimelake-hotspots-{group}",
                            str(staged["model_version"].iloc[0]))
    lineage.emit(settings, f"ml/predictions/{group}", context.run_id, inputs=[model],
                 outputs=[lineage.delta(settings, settings.lake / "ml" / "predictions", version_written, len(staged))])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(staged),
        "delta_version": version_written,
        "target_month": str(staged["target_month"].iloc[0]),
        "model_version": str(staged["model_version"].iloc[0]),
        "champion_method": champ.method,
        "mlflow_run_id": str(staged["mlflow_run_id"].iloc[0]),
        "hotspots_5pct": int(staged["hotspot_5pct"].sum()),
        "table_uri": dg.MetadataValue.path(str(settings.lake / "ml" / "predictions")),
    })


@dg.definitions
def ml_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[hotspot_model, predictions])


train_forecast_models_job = dg.define_asset_job(
    "train_forecast_models_job",
    selection=dg.AssetSelection.groups(ML_GROUP),
    partitions_def=group_partitions,
    description="Backtest, track, gate and forecast one forecast group (a partition).",
)


@dg.definitions
def ml_jobs() -> dg.Definitions:
    return dg.Definitions(jobs=[train_forecast_models_job])
