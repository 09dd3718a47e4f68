"""Lake maintenance: a weekly job that compacts small files and vacuums unreferenced ones in every bronze,
quarantine, gold and public table (crimelake.lake.maintain_lake)."""

import dagster as dg

from crimelake.lake import DEFAULT_RETENTION_HOURS
from orchestration.defs.transform.dbt_assets import WAREHOUSE_POOL
from orchestration.lib.resources import LakeResource


class MaintainConfig(dg.Config):
    retention_hours: int = DEFAULT_RETENTION_HOURS


# In the warehouse pool: compaction commits to the same tables the ingest and gold assets write, and Delta on local
# disk must have one writer at a time.
@dg.op(pool=WAREHOUSE_POOL)
def compact_and_vacuum_lake(context: dg.OpExecutionContext, config: MaintainConfig, lake: LakeResource) -> dg.Output:
    """Compact every table's small files, then vacuum files older versions no longer need (retention in hours;
    versions that predictions record stay readable)."""
    from crimelake.lake import maintain_lake

    settings = lake.settings()
    results = maintain_lake(settings.lake, retention_hours=config.retention_hours)
    rows = [{"table": r.path.relative_to(settings.lake).as_posix(), "files_before": r.files_before,
             "files_after": r.files_after, "retention_hours": r.retention_hours} for r in results]
    for r in rows:
        context.log.info(f"{r['table']}: {r['files_before']} -> {r['files_after']} files")
    return dg.Output(len(rows), metadata={
        "tables": len(rows),
        "files_before": sum(r["files_before"] for r in rows),
        "files_after": sum(r["files_after"] for r in rows),
        "per_table": dg.MetadataValue.json(rows),
    })


@dg.job(description="Compact and vacuum every bronze, quarantine, gold and public Delta table.")
def maintain_lake_job():
    compact_and_vacuum_lake()


maintain_lake_job_schedule = dg.ScheduleDefinition(
    job=maintain_lake_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="Europe/London",
    description="Weekly, Sunday 03:00: small files from monthly loads compacted, old files vacuumed.",
)


@dg.definitions
def maintenance_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[maintain_lake_job], schedules=[maintain_lake_job_schedule])
