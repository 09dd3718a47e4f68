"""When ingestion runs: as files land (sensor) and once a month (schedule)."""

from __future__ import annotations

import dagster as dg

from crimelake.config import Settings
from crimelake.ingest.landing import fingerprint, landed_months
from data_contracts.loader import default_contracts
from orchestration.defs.ingest.assets import INGEST_GROUP
from orchestration.lib.partitions import monthly_partitions

ingest_landing_job = dg.define_asset_job(
    "ingest_landing_job",
    selection=dg.AssetSelection.groups(INGEST_GROUP),
    partitions_def=monthly_partitions,
    description="Load one month of every landed source into bronze Delta tables.",
)

ingest_landing_job_schedule = dg.build_schedule_from_partitioned_job(
    ingest_landing_job,
    name="ingest_landing_job_schedule",
    day_of_month=20,
    hour_of_day=6,
    description="Monthly cycle: data.police.uk publishes a month's files in the following month.",
)


def source_assets() -> dict[str, list[dg.AssetKey]]:
    out: dict[str, list[dg.AssetKey]] = {}
    for c in default_contracts().values():
        out.setdefault(c.source, []).append(dg.AssetKey([c.source, c.entity]))
    return out


def recorded_fingerprint(instance: dg.DagsterInstance, key: dg.AssetKey, month: str) -> str | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[month]), limit=1
    ).records
    if not records:
        return None
    mat = records[0].asset_materialization
    value = mat.metadata.get("landing_fingerprint") if mat else None
    return getattr(value, "value", None)


def stale_partitions(instance: dg.DagsterInstance, settings: Settings) -> list[tuple[str, str, str, list[dg.AssetKey]]]:
    """(source, month, fingerprint, asset keys) for every landed month whose files changed since last loaded."""
    valid = set(monthly_partitions.get_partition_keys())
    out = []
    for source, keys in source_assets().items():
        for month in landed_months(settings, source):
            if month not in valid:
                continue
            fp = fingerprint(settings, source, month)
            stale = [k for k in keys if recorded_fingerprint(instance, k, month) != fp]
            if stale:
                out.append((source, month, fp, stale))
    return out


@dg.sensor(
    job=ingest_landing_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the landing folder and loads each month whose files arrived or changed.",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    settings = Settings.from_env().prepare()
    requests = []
    for source, month, fp, keys in stale_partitions(context.instance, settings):
        requests.append(dg.RunRequest(
            run_key=f"{source}:{month}:{fp}",
            partition_key=month,
            asset_selection=keys,
            tags={"crimelake/source": source},
        ))
    if not requests:
        return dg.SkipReason("no new or changed files in the landing folder")
    return requests


@dg.definitions
def ingest_automation() -> dg.Definitions:
    return dg.Definitions(jobs=[ingest_landing_job], schedules=[ingest_landing_job_schedule], sensors=[landing_sensor])
