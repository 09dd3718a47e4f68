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
    executor_def=dg.in_process_executor,
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


SOURCE_TAG = "crimelake/source"
FINGERPRINT_TAG = "crimelake/landing_fingerprint"
_IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def attempts_per_delivery() -> int:
    """Runs the sensor launches for one delivery (source, month, fingerprint) before it waits for the files to
    change: `CRIMELAKE_INGEST_ATTEMPTS`, default 3. A run that fails (a worker killed, a disk full) is tried again
    on a later tick; one that fails every time is not launched every 30 seconds forever."""
    from crimelake.config import env_count

    return env_count("CRIMELAKE_INGEST_ATTEMPTS", 3)


def in_flight(instance: dg.DagsterInstance) -> set[tuple[str, str | None]]:
    """(month, source) of every ingest run queued or in progress; source None for a run of every source of the
    month (a `crimelake run`)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=ingest_landing_job.name, statuses=_IN_FLIGHT))
    return {(r.tags.get("dagster/partition"), r.tags.get(SOURCE_TAG)) for r in runs}


def failed_attempts(instance: dg.DagsterInstance, source: str, month: str, fp: str) -> int:
    """Ingest runs of this delivery that failed (a cancelled run is not tried again: someone stopped it)."""
    return instance.get_runs_count(dg.RunsFilter(
        job_name=ingest_landing_job.name, statuses=[dg.DagsterRunStatus.FAILURE],
        tags={"dagster/partition": month, SOURCE_TAG: source, FINGERPRINT_TAG: fp}))


def landing_requests(instance: dg.DagsterInstance, settings: Settings) -> tuple[list[dg.RunRequest], list[str]]:
    """The runs to launch for what changed in the landing folder, and why anything changed was left alone.

    Loaded means the same thing here as for `crimelake run`: the latest materialization of each asset of the
    month records the fingerprint of the files now landed. A delivery with a run queued or in progress is not
    requested again; one whose runs failed is requested again under a new run key (its attempt number), up to
    `attempts_per_delivery()`."""
    busy = in_flight(instance)
    limit = attempts_per_delivery()
    requests, waiting = [], []
    for source, month, fp, keys in stale_partitions(instance, settings):
        if (month, source) in busy or (month, None) in busy:
            waiting.append(f"{source} {month}: a run is queued or in progress")
            continue
        failed = failed_attempts(instance, source, month, fp)
        if failed >= limit:
            waiting.append(f"{source} {month}: {failed} runs failed on these files; change or re-deliver them "
                           f"(or run `crimelake run --month {month}`) to try again")
            continue
        requests.append(dg.RunRequest(
            run_key=f"{source}:{month}:{fp}:attempt-{failed + 1}",
            partition_key=month,
            asset_selection=keys,
            tags={SOURCE_TAG: source, FINGERPRINT_TAG: fp},
        ))
    return requests, waiting


@dg.sensor(
    job=ingest_landing_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the landing folder and loads each month whose files arrived or changed (and one whose "
                "load failed, a few times).",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    settings = Settings.from_env().prepare()
    requests, waiting = landing_requests(context.instance, settings)
    for line in waiting:
        context.log.info(line)
    if not requests:
        return dg.SkipReason("; ".join(waiting) or "no new or changed files in the landing folder")
    return requests


@dg.definitions
def ingest_automation() -> dg.Definitions:
    return dg.Definitions(jobs=[ingest_landing_job], schedules=[ingest_landing_job_schedule], sensors=[landing_sensor])
