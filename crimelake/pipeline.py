"""Run the Dagster definitions from the command line, recorded in the home's Dagster instance.

`crimelake run` goes through the same jobs the Dagster UI runs, so its runs appear in the UI's history with their
checks and metadata.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from crimelake.config import Settings, env_count
from crimelake.ingest.landing import fingerprint, landed_months
from crimelake.summary import problems

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class TransformRun:
    months: tuple[str, str] | None
    run_id: str
    success: bool
    failed_checks: list[str]
    warned_checks: list[str]
    problems: list[str] = field(default_factory=list)


@dataclass
class MonthRun:
    month: str
    assets: list[str]
    run_id: str
    success: bool
    failed_checks: list[str]
    problems: list[str] = field(default_factory=list)


def _job(settings: Settings, name: str):
    """A job of the code location and the home's Dagster instance, with the home prepared and the dbt manifest
    built first (loading the definitions needs it)."""

    from orchestration.lib.dbt import ensure_manifest

    settings.prepare()
    ensure_manifest()
    from orchestration.definitions import defs

    return defs().resolve_job_def(name), settings.dagster_instance()


def pending(settings: Settings, *, months: list[str] | None = None, everything: bool = False) -> dict[str, list]:
    """Month -> asset keys to materialize: months whose files changed since they were last loaded (or all)."""

    from orchestration.defs.ingest.automation import recorded_fingerprint, source_assets
    from orchestration.lib.partitions import monthly_partitions

    instance = settings.dagster_instance()
    valid = set(monthly_partitions.get_partition_keys())
    todo: dict[str, list] = {}
    for source, keys in source_assets().items():
        for month in landed_months(settings, source):
            if months and month not in months:
                continue
            if month not in valid:
                raise ValueError(f"landing/{source}/{month}: not a month the pipeline partitions "
                                 f"({monthly_partitions.get_first_partition_key()} to "
                                 f"{monthly_partitions.get_last_partition_key()}); a month after the last "
                                 f"complete month waits for it to end, and CRIMELAKE_FIRST_MONTH, when set, "
                                 f"must not be later than the first landed month")
            fp = fingerprint(settings, source, month)
            stale = keys if everything else [k for k in keys if recorded_fingerprint(instance, k, month) != fp]
            todo.setdefault(month, []).extend(stale)
    return {m: ks for m, ks in sorted(todo.items()) if ks}


def run_landed(
    settings: Settings,
    *,
    months: list[str] | None = None,
    everything: bool = False,
    on_month: Callable[[MonthRun], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
) -> list[MonthRun]:
    """Materialize what has landed, one Dagster run per month."""
    job, instance = _job(settings, "ingest_landing_job")
    todo = pending(settings, months=months, everything=everything)
    out = []
    for month, keys in todo.items():
        if on_start:
            on_start(month, len(keys))
        result = _execute(job, instance, partition_key=month, asset_selection=keys, run_config=QUIET_LOGS,
                          tags={"crimelake/trigger": "cli"})
        failed, _ = _failed_checks(result)
        mr = MonthRun(month, [k.to_user_string() for k in keys], result.run_id, result.success, failed,
                      problems(result))
        out.append(mr)
        if on_month:
            on_month(mr)
    return out


def _execute(job, instance, *, tags: dict[str, str], **kwargs):
    """One in-process run, tagged with this process (so a later command can tell when it died), watched by the
    command's guard, its pool slots released however it ends."""
    from crimelake.guard import tracked_run
    from crimelake.recovery import process_tags

    with tracked_run(instance) as run_id:
        return job.execute_in_process(instance=instance, run_id=run_id, raise_on_error=False,
                                      tags={**tags, **process_tags()}, **kwargs)


def _failed_checks(result) -> tuple[list[str], list[str]]:
    """(failed with severity error, failed with severity warn) check names of a run."""
    import dagster as dg

    errors, warnings = [], []
    for e in result.all_events:
        if e.event_type_value != "ASSET_CHECK_EVALUATION" or e.asset_check_evaluation_data.passed:
            continue
        data = e.asset_check_evaluation_data
        name = f"{data.asset_key.to_user_string()}:{data.check_name}"
        (warnings if data.severity == dg.AssetCheckSeverity.WARN else errors).append(name)
    return errors, warnings


def _materializations(result) -> dict[str, dict]:
    """Asset key -> metadata values of every materialization in a run."""
    md = {}
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            mat = e.event_specific_data.materialization
            md[mat.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return md


def run_transform(settings: Settings, months: tuple[str, str] | None = None, *, full_refresh: bool = False) -> TransformRun:
    """Dagster runs of dbt (build and tests), the gold exports and the public tables over a range of months (or
    everything). A month whose latest ingest failed a blocking check is left out (the months around it run, one
    run per unbroken stretch) and named in the run's problems."""
    from ml.cell_months import month_range

    job, instance = _job(settings, TRANSFORM_JOB)
    from orchestration.defs.transform.dbt_assets import DBT_ASSETS  # loads the manifest `_job` has built

    if months is None:
        all_months = sorted({m for ms in pending_months(settings).values() for m in ms})
        if not all_months:
            raise ValueError(f"nothing has landed in {settings.landing}: generate or ingest data first")
        months = (all_months[0], all_months[-1])
    held = held_months(settings, month_range(*months))
    spans = stretches(month_range(*months), held)
    out = TransformRun(months, "none", bool(spans), [], [],
                       [f"{m} held back by {', '.join(checks)}: dbt, gold and public not run over it"
                        for m, checks in sorted(held.items())])
    for i, (first, last) in enumerate(spans):
        # A full refresh rebuilds every seed and model at once: the first run does it, the rest build their months
        # (and the whole tables again, as every run does).
        config = {"ops": {a.op.name: {"config": {"full_refresh": full_refresh and i == 0}} for a in DBT_ASSETS}}
        result = _execute(
            job, instance,
            run_config={**QUIET_LOGS, **config},
            tags={"crimelake/trigger": "cli", "dagster/asset_partition_range_start": first,
                  "dagster/asset_partition_range_end": last},
        )
        errors, warnings = _failed_checks(result)
        out.run_id = result.run_id
        out.success = out.success and result.success
        out.failed_checks += errors
        out.warned_checks += warnings
        out.problems += problems(result)
    return out


def stretches(months: list[str], held) -> list[tuple[str, str]]:
    """The unbroken runs of `months` (in order) that skip every month in `held`, as (first, last) pairs."""
    out: list[list[str]] = []
    previous_held = True
    for m in months:
        if m in held:
            previous_held = True
            continue
        if previous_held:
            out.append([m, m])
        out[-1][1] = m
        previous_held = False
    return [(a, b) for a, b in out]


def held_months(settings: Settings, months: list[str]) -> dict[str, list[str]]:
    """Month -> the ingest checks (`source/entity:check`) that failed on the latest load of one of its source
    entities: such a month goes no further than ingest until a new load passes."""
    import dagster as dg

    from orchestration.defs.ingest.assets import HELD_BACK
    from orchestration.defs.ingest.automation import source_assets

    instance = settings.dagster_instance()
    wanted = set(months)
    held: dict[str, list[str]] = {}
    for source, keys in source_assets().items():
        for month in sorted(wanted.intersection(landed_months(settings, source))):
            for key in keys:
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, asset_partitions=[month]), limit=1).records
                mat = records[0].asset_materialization if records else None
                value = mat.metadata.get(HELD_BACK) if mat else None
                checks = getattr(value, "value", value) or ""
                held.setdefault(month, []).extend(
                    f"{key.to_user_string()}:{c.strip()}" for c in checks.split(",") if c.strip())
    return {m: c for m, c in held.items() if c}


def pending_months(settings: Settings) -> dict[str, list[str]]:
    """Source -> landed months."""
    from orchestration.defs.ingest.automation import source_assets

    return {source: landed_months(settings, source) for source in source_assets()}


TRANSFORM_JOB = "transform_lakehouse_job"


def untransformed_months(settings: Settings, months: list[str] | None = None) -> list[str]:
    """Months loaded into bronze whose latest load no successful transform run (dbt build and tests, gold and
    public exports) has covered since: a transform killed or failed leaves its months here until one succeeds."""
    import dagster as dg

    from orchestration.defs.ingest.automation import source_assets

    instance = settings.dagster_instance()
    loaded: dict[str, float] = {}
    for source, keys in source_assets().items():
        for month in landed_months(settings, source):
            if months and month not in months:
                continue
            for key in keys:
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, asset_partitions=[month]), limit=1).records
                if records:
                    loaded[month] = max(loaded.get(month, 0.0), records[0].timestamp)
    if not loaded:
        return []
    covered: dict[str, float] = {}
    runs = instance.get_run_records(
        dg.RunsFilter(job_name=TRANSFORM_JOB, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1000)
    for rec in runs:
        tags = rec.dagster_run.tags
        first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
        last = tags.get("dagster/asset_partition_range_end") or first
        if rec.start_time is None or not first:
            continue
        for month in loaded:
            if first <= month <= last:
                covered[month] = max(covered.get(month, 0.0), rec.start_time)
    return sorted(m for m, t in loaded.items() if t > covered.get(m, float("-inf")))



@dataclass
class ModelRun:
    group: str
    run_id: str
    success: bool
    failed_checks: list[str]
    warned_checks: list[str]
    metadata: dict
    problems: list[str] = field(default_factory=list)


# Peak memory of one forecast-group worker per cell of the study area, measured nationally (296,000 cells, 16
# months: 2.7 to 3.3 GB per worker process), rounded up for longer histories.
WORKER_BYTES_PER_CELL = 12_000


def model_workers(settings: Settings | None = None) -> int:
    """Forecast groups trained at once: `CRIMELAKE_MODEL_WORKERS`, else one per core up to 2 when two workers fit
    in `CRIMELAKE_MEMORY_BUDGET_MB` (default 4096) at ``WORKER_BYTES_PER_CELL`` per cell of the study area. Each
    group's fits then take one thread each (ml.model.train_threads), so two cores train two groups side by side; a
    national study area trains one group at a time, its fits on every core, and the groups share the loaded
    tables."""
    workers = max(1, min(2, os.cpu_count() or 1))
    if settings is not None and workers > 1 and "CRIMELAKE_MODEL_WORKERS" not in os.environ:
        budget = env_count("CRIMELAKE_MEMORY_BUDGET_MB", 4096) * 2**20
        workers = max(1, min(workers, budget // max(1, _study_cells(settings) * WORKER_BYTES_PER_CELL)))
    return env_count("CRIMELAKE_MODEL_WORKERS", workers)


def _study_cells(settings: Settings) -> int:
    """Rows of gold/dim_cells, from the Delta log (no data read); 0 when there is no table yet."""
    from crimelake import lake

    path = settings.gold("dim_cells")
    if not lake.table_exists(path):
        return 0
    from deltalake import DeltaTable

    actions = DeltaTable(str(path)).get_add_actions(flatten=True)
    return int(sum(n or 0 for n in actions.column("num_records").to_pylist()))


def _run_group(settings: Settings, group: str) -> ModelRun:
    job, instance = _job(settings, "train_forecast_models_job")
    result = _execute(job, instance, partition_key=group, run_config=QUIET_LOGS, tags={"crimelake/trigger": "cli"})
    errors, warnings = _failed_checks(result)
    from crimelake import memory

    memory.release()  # the group's features and training rows are gone: give the pages back before the next group
    return ModelRun(group, result.run_id, result.success, errors, warnings, _materializations(result),
                    problems(result))


def run_models(settings: Settings, groups: list[str], on_group: Callable[[ModelRun], None] | None = None,
               workers: int | None = None) -> list[ModelRun]:
    """One Dagster run per forecast group: backtest, MLflow tracking, promotion gate, predictions.

    With more than one worker the groups' runs go to separate processes (spawned, so each has its own Dagster,
    MLflow and XGBoost state); they share the home's Dagster instance and MLflow store, and the predictions table
    is appended one run at a time (the asset's pool). Results come back in the order of `groups`."""
    workers = min(model_workers(settings) if workers is None else workers, len(groups))
    # The cores the workers leave go to each fit's threads (ml.model.train_threads): one group at a time gets both.
    with _environment("CRIMELAKE_TRAIN_THREADS", str(max(1, (os.cpu_count() or 1) // max(workers, 1)))):
        return _run_groups(settings, groups, on_group, workers)


@contextlib.contextmanager
def _environment(name: str, value: str):
    """`name` set to `value` for the block unless the environment sets it already."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _run_groups(settings: Settings, groups: list[str], on_group: Callable[[ModelRun], None] | None,
                workers: int) -> list[ModelRun]:
    if workers <= 1:
        out = []
        for group in groups:
            mr = _run_group(settings, group)
            out.append(mr)
            if on_group:
                on_group(mr)
        return out

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from crimelake.forecasting import setup_mlflow

    settings.prepare()
    setup_mlflow(settings)
    import mlflow

    # Create the MLflow store's schema once, here, so the workers do not race to migrate a new database.
    mlflow.search_experiments(max_results=1)
    done: dict[str, ModelRun] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_group, settings, g): g for g in groups}
        for fut in as_completed(futures):
            mr = fut.result()
            done[mr.group] = mr
            if on_group:
                on_group(mr)
    return [done[g] for g in groups]


def run_hotspot_tracking(settings: Settings) -> ModelRun:
    """One Dagster run measuring concentration and classifying emerging hot spots."""
    job, instance = _job(settings, "track_hotspots_job")
    result = _execute(job, instance, run_config=QUIET_LOGS, tags={"crimelake/trigger": "cli"})
    errors, warnings = _failed_checks(result)
    return ModelRun("hotspots", result.run_id, result.success, errors, warnings, _materializations(result),
                    problems(result))
