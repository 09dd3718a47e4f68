"""The ingest job on Dagster's multiprocess executor (crimelake.executor): two months of a small landing, each
step in a process of its own, load the same bronze rows as the in-process runs `crimelake run` makes."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from crimelake import executor, lake
from crimelake.config import Settings
from crimelake.pipeline import pending, run_landed
from crimelake.simulate import generate

pytestmark = [pytest.mark.integration]

BRONZE = [("police_uk", "street"), ("police_uk", "outcomes"), ("police_uk", "stop_and_search"),
          ("force_rms_ho", "crimes")]


def landed(root, name: str) -> Settings:
    for var in ("CRIMELAKE_HOME", "DAGSTER_HOME"):
        os.environ.pop(var, None)
    settings = Settings.from_env(root / name).prepare()
    generate(settings.landing, seed=9, forces=["bedfordshire", "city-of-london"], months=2, incidents=200,
             defect_rate=0.0)
    return settings


def bronze_rows(settings: Settings) -> dict[str, int]:
    return {f"{s}/{e}": lake.read(settings.bronze(s, e)).num_rows for s, e in BRONZE
            if lake.table_exists(settings.bronze(s, e))}


def test_ingest_job_fans_out_over_processes_and_loads_what_in_process_runs_load(tmp_path, monkeypatch):
    monkeypatch.delenv("CRIMELAKE_HOME", raising=False)
    reference = landed(tmp_path, "in_process")
    assert all(r.success for r in run_landed(reference))
    expected = bronze_rows(reference)

    settings = landed(tmp_path, "multiprocess")
    todo = pending(settings)
    assert len(todo) == 2
    step_pids: set[int] = set()
    for month, keys in todo.items():
        result = executor.execute(executor.ingest_job, settings, partition_key=month, asset_selection=keys)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        starts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
        assert len(starts) == len(keys)
        step_pids.update(e.pid for e in starts)
        # The run is recorded as a partition run in the home's instance, as the in-process ones are.
        run = dg.DagsterInstance.get().get_run_by_id(result.run_id)
        assert run.tags["dagster/partition"] == month
    # Every step ran in a process of its own, none in this one.
    assert os.getpid() not in step_pids and len(step_pids) == sum(len(k) for k in todo.values())
    assert bronze_rows(settings) == expected and expected["police_uk/street"] > 0
    # The months now count as loaded: nothing is pending for `crimelake run`.
    assert pending(settings) == {}


def test_fanned_out_jobs_use_the_multiprocess_executor_and_keep_the_pools(settings):
    for factory in (executor.ingest_job, executor.training_job):
        job = factory()
        assert job.executor_def.name == "crimelake_multiprocess"
    config = dg.DagsterInstance.get().get_concurrency_config()
    assert config.pool_config.default_pool_limit == 1  # the warehouse pool: one step at a time, in any process
    with pytest.raises(ValueError, match="multiprocess"):
        executor.multiprocess_job("transform_lakehouse_job")
