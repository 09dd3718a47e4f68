"""When ingestion runs: as files land (sensor) and once a month (schedule)."""

from __future__ import annotations

import hashlib

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
    """The record of what is loaded, read alike by `crimelake run` (crimelake.pipeline.pending) and the landing
    sensor: the landing fingerprint in the latest materialization of the asset's month, whichever launched it. A
    run that failed before writing left none, so its month stays to be loaded."""
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


def before_first_partition(settings: Settings) -> list[str]:
    """Months landed before the first month the loaded definitions partition (they landed after the code location
    loaded): they wait for a reload, which moves the first partition back to them."""
    first = monthly_partitions.get_first_partition_key()
    return [f"landing/{source}/{month}: before {first}, the first month the loaded definitions partition; reload "
            f"the code location (Dagster UI, Deployment, Reload) to take it in"
            for source in source_assets() for month in landed_months(settings, source) if month < first]


# Every ingest run the sensor launches carries the landing fingerprint of its month (all sources): the run queue
# lets one such run go at a time, and a failed run is counted against the files it tried.
FINGERPRINT_TAG = "crimelake/landing_fingerprint"
_IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def attempts_per_delivery() -> int:
    """Runs the sensor launches for one delivery (a month's files as they are now) before it waits for the files
    to change: `CRIMELAKE_INGEST_ATTEMPTS`, default 3. A run that fails (a worker killed, a disk full, the UI
    stopped mid-run) is tried again on a later tick; one that fails every time is not launched every 30 seconds
    forever."""
    from crimelake.config import env_count

    return env_count("CRIMELAKE_INGEST_ATTEMPTS", 3)


def in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Months with an ingest run queued or in progress (launched by the sensor, the UI or `crimelake run`)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=ingest_landing_job.name, statuses=_IN_FLIGHT))
    return {r.tags.get("dagster/partition") for r in runs}


def failed_attempts(instance: dg.DagsterInstance, month: str, fp: str) -> int:
    """Ingest runs of this delivery that failed (a cancelled run is not tried again: someone stopped it)."""
    return instance.get_runs_count(dg.RunsFilter(
        job_name=ingest_landing_job.name, statuses=[dg.DagsterRunStatus.FAILURE],
        tags={"dagster/partition": month, FINGERPRINT_TAG: fp}))


def month_fingerprint(parts: list[tuple[str, str]]) -> str:
    """One fingerprint for a month's delivery from its sources' (source, fingerprint) pairs."""
    return hashlib.sha256("\n".join(f"{s}={fp}" for s, fp in sorted(parts)).encode()).hexdigest()[:16]


def landing_requests(instance: dg.DagsterInstance, settings: Settings) -> tuple[list[dg.RunRequest], list[str]]:
    """The runs to launch for what changed in the landing folder (one per month, every changed source in it, as
    `crimelake run` loads them), and why a changed month was left alone.

    Loaded means the same thing here as for `crimelake run`: the latest materialization of each asset of the
    month records the fingerprint of the files now landed. A month with an ingest run queued or in progress is
    not requested again; one whose runs failed is requested again under a new run key (its attempt number), up to
    `attempts_per_delivery()`."""
    months: dict[str, tuple[list[tuple[str, str]], list[dg.AssetKey]]] = {}
    for source, month, fp, keys in stale_partitions(instance, settings):
        parts, selected = months.setdefault(month, ([], []))
        parts.append((source, fp))
        selected.extend(keys)
    busy = in_flight(instance)
    limit = attempts_per_delivery()
    requests, waiting = [], before_first_partition(settings)
    for month, (parts, keys) in sorted(months.items()):
        if month in busy:
            waiting.append(f"{month}: an ingest run is queued or in progress")
            continue
        fp = month_fingerprint(parts)
        failed = failed_attempts(instance, month, fp)
        if failed >= limit:
            waiting.append(f"{month}: {failed} runs failed on these files; change or re-deliver them (or run "
                           f"`crimelake run --month {month}`) to try again")
            continue
        requests.append(dg.RunRequest(
            run_key=f"{month}:{fp}:attempt-{failed + 1}",
            partition_key=month,
            asset_selection=keys,
            tags={FINGERPRINT_TAG: fp, "crimelake/sources": ",".join(sorted(s for s, _ in parts))},
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
