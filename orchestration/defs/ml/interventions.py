"""Intervention effects: every intervention of the bronze log judged against the released gold counts of its force,
per forecast group, in the same run as the group's models. Thin: the work is in `crimelake.interventions` and
`ml.interventions`."""

import dagster as dg

from crimelake import interventions
from orchestration.defs.ml.assets import GOLD_DEPS, ML_GROUP, group_partitions
from orchestration.lib.resources import LakeResource

EFFECTS_KEY = dg.AssetKey(["gold", interventions.EFFECTS])
LOG_KEY = dg.AssetKey(list(interventions.LOG))


@dg.asset(
    key=EFFECTS_KEY,
    deps=[*GOLD_DEPS, LOG_KEY],
    partitions_def=group_partitions,
    group_name=ML_GROUP,
    # Groups run side by side; the one Delta table takes their overwrites one at a time.
    pool="intervention_effects",
    kinds={"python", "deltalake"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Per forecast group (partition): every intervention of the log (`lake/bronze/interventions/log`, "
                "its latest delivery) that targets the group, its area resolved to H3 cells and its effect estimated "
                "against matched comparison cells of its force (rate ratio and crimes prevented a month with 90% "
                "intervals, pre-trend check, Weighted Displacement Quotient), or a note saying why there is no "
                "estimate. One row per intervention and group in the Delta table `lake/gold/intervention_effects` "
                "(the group's rows replaced each run), with the gold and log versions read; a markdown report per "
                "intervention under `reports/interventions/`.",
)
def intervention_effects(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    from crimelake import lineage
    from crimelake.intervention_reports import write_reports

    settings = lake.settings()
    group = context.partition_key
    frame = interventions.evaluate_log(settings, groups=(group,))
    written = interventions.write_effects(settings, frame, (group,))
    # A report covers every group of its intervention: rendered from the whole table as it now stands.
    everything = interventions.read_effects(settings, written.version)
    reports = write_reports(settings, everything, set(frame["intervention_id"]))
    read = {settings.gold("fct_cell_month_counts"): "gold_counts_version", settings.gold("dim_cells"):
            "gold_cells_version", settings.gold("coverage"): "gold_coverage_version",
            interventions.log_path(settings): "bronze_log_version"}
    lineage.emit(settings, f"gold/intervention_effects/{group}", context.run_id,
                 inputs=[lineage.delta(settings, path, int(frame[col].iloc[0])) for path, col in read.items()
                         if len(frame) and frame[col].notna().iloc[0]],
                 outputs=[lineage.delta(settings, written.path, written.version, written.rows)])
    evaluated = frame[frame["status"] == "evaluated"]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "delta_version": written.version,
        "interventions": int(frame["intervention_id"].nunique()),
        "estimated": int(evaluated["rate_ratio"].notna().sum()),
        "not_evaluated": dg.MetadataValue.json(
            dict(zip(frame.loc[frame["status"] != "evaluated", "intervention_id"],
                     frame.loc[frame["status"] != "evaluated", "note"], strict=True))),
        "reports": len(reports),
        "table_uri": dg.MetadataValue.path(str(written.path)),
    })


@dg.asset_check(
    asset=EFFECTS_KEY,
    blocking=True,
    description="Fails when an effect row lacks a required column or value, or has a 90% interval (rate ratio or "
                "crimes prevented) that does not contain its own estimate.",
)
def effects_are_consistent(lake: LakeResource) -> dg.AssetCheckResult:
    frame = interventions.read_effects(lake.settings())
    problems = interventions.check_effects(frame)
    return dg.AssetCheckResult(passed=not problems, metadata={
        "rows": len(frame), "problems": dg.MetadataValue.json(problems)})


@dg.definitions
def intervention_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[intervention_effects], asset_checks=[effects_are_consistent])
