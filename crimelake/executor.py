"""Dagster beyond one process: the ingest and training jobs on Dagster's multiprocess executor.

`crimelake run` executes every job in its own process (`execute_in_process`), which keeps a small machine's memory
predictable. The jobs' steps are independent enough to fan out: one month's ingest has a step per source entity,
each the only writer of its bronze table, and a forecast group's training steps are separate assets. Here the same
jobs run with each step in a process of its own, at most `MAX_CONCURRENT` at once. Steps in a pool (`warehouse`
for every step that opens the DuckDB warehouse or commits to the tables maintenance compacts, `ml_predictions`,
`intervention_effects`) still run one at a time: the home's Dagster instance gives every pool one slot
(crimelake.config), and the executor claims a slot before it starts such a step, whatever process runs it.

A run on this executor is started with `execute(factory, ...)`: the step processes rebuild the job from the
module-level `factory` (`dg.reconstructable`), so it cannot be an object made at run time.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

MAX_CONCURRENT = 2
# Each step process starts from a fresh interpreter: no Dagster, DuckDB or MLflow state is inherited by forking.
MULTIPROCESS = dg.multiprocess_executor.configured(
    {"max_concurrent": MAX_CONCURRENT, "start_method": {"spawn": {}}}, name="crimelake_multiprocess")
FANNED_OUT_JOBS = ("ingest_landing_job", "train_forecast_models_job")


def multiprocess_job(name: str) -> dg.JobDefinition:
    """Job `name` of the code location, on the multiprocess executor."""
    if name not in FANNED_OUT_JOBS:
        raise ValueError(f"{name!r} does not run on the multiprocess executor here; one of {FANNED_OUT_JOBS}")
    from orchestration.definitions import defs
    from orchestration.lib.dbt import ensure_manifest

    ensure_manifest()
    return defs().resolve_job_def(name).with_executor_def(MULTIPROCESS)


def ingest_job() -> dg.JobDefinition:
    """The ingest job (one month per run), its steps in separate processes."""
    return multiprocess_job("ingest_landing_job")


def training_job() -> dg.JobDefinition:
    """The training job (one forecast group per run), its steps in separate processes."""
    return multiprocess_job("train_forecast_models_job")


def execute(factory: Callable[[], dg.JobDefinition], settings, *, partition_key: str,
            asset_selection: list[dg.AssetKey] | None = None, tags: dict[str, str] | None = None):
    """One run of `factory`'s job (`ingest_job` or `training_job`) for one partition in the home's Dagster
    instance; the run's result (`success`, `run_id`, events)."""
    # The home's instance; DAGSTER_HOME (what the step processes read) points at the home.
    return dg.execute_job(dg.reconstructable(factory), instance=settings.dagster_instance(),
                          asset_selection=asset_selection, tags={"dagster/partition": partition_key, **(tags or {})},
                          raise_on_error=False)
