"""The Dagster code location: what the UI shows, and real in-process runs of the ingest assets."""

from __future__ import annotations

import dagster as dg
import pytest

from crimelake import lake
from crimelake.pipeline import pending, run_landed
from data_contracts.loader import default_contracts
from orchestration.defs.ingest.automation import landing_sensor
from tests.factories import contract, csv_text, land, street_row, street_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def defs(settings):
    from orchestration.definitions import defs as build

    return build()


def test_one_ingest_asset_per_contract_keyed_like_its_dbt_source(defs):
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    expected = {f"{c.source}/{c.entity}" for c in default_contracts().values()}
    assert expected <= keys


def test_each_ingest_asset_carries_its_checks_and_monthly_partitions(defs):
    graph = defs.resolve_asset_graph()
    street = dg.AssetKey(["police_uk", "street"])
    checks = {k.name for k in graph.get_check_keys_for_assets({street})}
    assert checks == {"rows_accounted_for", "no_rejected_files", "contract_expectations"}
    node = graph.get(street)
    assert node.partitions_def.get_first_partition_key() == "2010-12"
    assert {s.name for s in defs.sensors} == {"landing_sensor", "refresh_downstream_sensor"}
    auto = next(s for s in defs.sensors if s.name == "refresh_downstream_sensor")
    assert auto.default_status == dg.DefaultSensorStatus.RUNNING
    assert {s.name for s in defs.schedules} == {"ingest_landing_job_schedule", "maintain_lake_job_schedule"}


def test_run_loads_landed_months_through_dagster_and_records_runs(settings, defs):
    street = contract("police_uk", "street")
    land(settings, street, "2024-03", "2024-03-bedfordshire-street.csv",
         csv_text(street, street_rows(29) + [street_row(**{"Crime type": "Cyber crime"})]))
    land(settings, street, "2024-03", "2024-03-cheshire-street.csv", "not,a,street,file\n1,2,3,4\n")
    assert list(pending(settings)) == ["2024-03"]

    runs = run_landed(settings)
    assert len(runs) == 1 and runs[0].success
    # The broken Cheshire file fails its check without holding back Bedfordshire.
    assert runs[0].failed_checks == ["police_uk/street:no_rejected_files"]
    assert lake.read(settings.bronze("police_uk", "street")).num_rows == 29
    assert lake.read(settings.quarantine("police_uk", "street")).num_rows == 1

    instance = dg.DagsterInstance.get()
    mat = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["police_uk", "street"]), asset_partitions=["2024-03"]), limit=1
    ).records[0].asset_materialization
    md = {k: v.value for k, v in mat.metadata.items()}
    assert (md["rows_read"], md["rows_loaded"], md["rows_quarantined"]) == (30, 29, 1)
    assert md["delta_version"] == lake.version(settings.bronze("police_uk", "street"))
    assert "2024-03-cheshire-street.csv | rejected" in md["files"]
    assert instance.get_runs_count() == 1
    # The materialization also emitted an OpenLineage event: landing files in, Delta versions out.
    from crimelake import lineage

    ev = [e for e in lineage.events(settings) if e["job"]["name"] == "police_uk/street"][-1]
    assert [i["name"] for i in ev["inputs"]] == ["landing/police_uk/2024-03/2024-03-bedfordshire-street.csv"]
    out = {o["name"]: o["facets"]["version"]["datasetVersion"] for o in ev["outputs"]}
    assert out["bronze/police_uk/street"] == str(md["delta_version"])
    # Loaded and unchanged: nothing is pending any more.
    assert pending(settings) == {}


def test_sensor_requests_a_run_for_new_or_changed_files_only(settings, defs):
    street = contract("police_uk", "street")
    ctx = dg.build_sensor_context(instance=dg.DagsterInstance.get(), definitions=defs)
    assert isinstance(landing_sensor(ctx), dg.SkipReason)

    land(settings, street, "2024-05", "2024-05-bedfordshire-street.csv", csv_text(street, [street_row(Month="2024-05")]))
    requests = landing_sensor(ctx)
    assert [(r.partition_key, sorted(k.to_user_string() for k in r.asset_selection)) for r in requests] == [
        ("2024-05", ["police_uk/outcomes", "police_uk/stop_and_search", "police_uk/street"])
    ]
    run_landed(settings)
    assert isinstance(landing_sensor(ctx), dg.SkipReason)
    land(settings, street, "2024-05", "2024-05-bedfordshire-street.v2.csv",
         csv_text(street, street_rows(2, Month="2024-05")))
    again = landing_sensor(ctx)
    assert [r.partition_key for r in again] == ["2024-05"]
    assert again[0].run_key != requests[0].run_key


def test_contract_breach_blocks_the_run(settings, defs):
    street = contract("police_uk", "street")
    rows = [street_row(**{"Crime type": "Cyber crime"})] * 3 + [street_row()]
    land(settings, street, "2024-06", "2024-06-bedfordshire-street.csv", csv_text(street, rows))
    runs = run_landed(settings, months=["2024-06"])
    assert "police_uk/street:contract_expectations" in runs[0].failed_checks
    assert not runs[0].success


def test_maintain_lake_job_compacts_the_small_files_of_monthly_loads(settings, defs):
    import pyarrow as pa

    path = settings.bronze("police_uk", "street")
    for n in range(3):
        lake.append(path, pa.table({"month": ["2024-03"], "n": [n]}))
    lake.replace_table(settings.gold("fct_x"), pa.table({"month": ["2024-03"], "n": [1]}))
    result = defs.resolve_job_def("maintain_lake_job").execute_in_process(
        instance=dg.DagsterInstance.get(),
        run_config={"ops": {"compact_and_vacuum_lake": {"config": {"retention_hours": 0}}}})
    assert result.success
    md = {k: v.value for k, v in _step_output_metadata(result).items()}
    assert md["tables"] == 2 and md["files_before"] == 4 and md["files_after"] == 2
    assert lake.read(path).num_rows == 3


def _step_output_metadata(result) -> dict:
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    return event.event_specific_data.metadata


def _land_generated(settings, months: int) -> None:
    """Clean simulated files for one force (every source), `months` months from 2024-01."""
    from crimelake.simulate import generate

    generate(settings.landing, seed=7, forces=["city-of-london"], months=months, incidents=60, defect_rate=0)


def _requested(requests) -> list[tuple[str, list[str]]]:
    return sorted((r.partition_key, sorted(k.to_user_string() for k in r.asset_selection)) for r in requests)


def test_sensor_shares_the_record_of_what_run_loaded(settings, defs):
    _land_generated(settings, 1)
    assert all(r.success for r in run_landed(settings))
    ctx = dg.build_sensor_context(instance=dg.DagsterInstance.get(), definitions=defs)
    assert isinstance(landing_sensor(ctx), dg.SkipReason)

    street = contract("police_uk", "street")
    land(settings, street, "2024-02", "2024-02-city-of-london-street.csv",
         csv_text(street, street_rows(3, Month="2024-02")))
    assert _requested(landing_sensor(ctx)) == [
        ("2024-02", ["police_uk/outcomes", "police_uk/stop_and_search", "police_uk/street"])]

    # A month delivered by several sources is loaded by one run, as `crimelake run` loads it.
    rms = contract("force_rms_ho", "crimes")
    land(settings, rms, "2024-02", "2024-02-city-of-london-crimes.csv", csv_text(rms, []))
    [request] = landing_sensor(ctx)
    assert {k.path[0] for k in request.asset_selection} == {"police_uk", "force_rms_ho"}


def test_sensor_retries_a_failed_load_and_never_requests_one_in_flight(settings, defs, monkeypatch):
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
    from dagster._core.utils import make_new_run_id

    import orchestration.defs.ingest.assets as ingest_assets

    street = contract("police_uk", "street")
    land(settings, street, "2024-05", "2024-05-bedfordshire-street.csv", csv_text(street, street_rows(3, Month="2024-05")))
    instance = dg.DagsterInstance.get()
    ctx = dg.build_sensor_context(instance=instance, definitions=defs)
    [first] = landing_sensor(ctx)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # The run the daemon would launch for the request, failing before anything is written.
    real_ingest_partition = ingest_assets.ingest_partition
    monkeypatch.setattr(ingest_assets, "ingest_partition", disk_full)
    job = defs.resolve_job_def("ingest_landing_job")
    failed = job.execute_in_process(instance=instance, partition_key=first.partition_key,
                                    asset_selection=first.asset_selection, raise_on_error=False,
                                    tags={**first.tags, "dagster/run_key": first.run_key})
    assert not failed.success
    [second] = landing_sensor(ctx)
    assert second.run_key != first.run_key
    assert _requested([second]) == _requested([first])

    # A run of that month in progress (launched by the daemon, or by `crimelake run`): nothing is requested twice.
    queued = DagsterRun(job_name="ingest_landing_job", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED,
                        tags={"dagster/partition": "2024-05", **second.tags})
    instance.add_run(queued)
    skipped = landing_sensor(ctx)
    assert isinstance(skipped, dg.SkipReason) and "queued or in progress" in skipped.skip_message
    instance.report_run_canceled(queued)

    # Failing on every attempt, a delivery waits for its files to change.
    monkeypatch.setenv("CRIMELAKE_INGEST_ATTEMPTS", "1")
    gave_up = landing_sensor(ctx)
    assert isinstance(gave_up, dg.SkipReason) and "1 runs failed" in gave_up.skip_message
    # Only these two are put back: `monkeypatch.undo()` would also restore the environment the settings fixture
    # cleared, pointing the retry at whatever home an earlier test left behind.
    monkeypatch.delenv("CRIMELAKE_INGEST_ATTEMPTS")
    monkeypatch.setattr(ingest_assets, "ingest_partition", real_ingest_partition)
    retried = job.execute_in_process(instance=instance, partition_key=second.partition_key,
                                     asset_selection=second.asset_selection,
                                     tags={**second.tags, "dagster/run_key": second.run_key})
    assert retried.success
    assert isinstance(landing_sensor(ctx), dg.SkipReason)


def test_instance_queues_daemon_runs_two_at_a_time_one_ingest(settings):
    config = dg.DagsterInstance.get().get_concurrency_config()
    queue = config.run_queue_config
    assert queue.max_concurrent_runs == 2
    assert {"key": "crimelake/landing_fingerprint", "limit": 1} in queue.tag_concurrency_limits
    assert config.pool_config.default_pool_limit == 1


def test_manifest_fresh_until_a_project_file_changes(tmp_path):
    import os

    from orchestration.lib.dbt import manifest_is_fresh

    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.sql"
    model.write_text("select 1")
    manifest = tmp_path / "target" / "manifest.json"
    assert not manifest_is_fresh(manifest, tmp_path)
    manifest.parent.mkdir()
    manifest.write_text("{}")
    (tmp_path / "target" / "run_results.json").write_text("{}")  # dbt's own output: not a project file
    os.utime(model, ns=(1, 1))
    assert manifest_is_fresh(manifest, tmp_path)
    os.utime(model, ns=(manifest.stat().st_mtime_ns + 10**9,) * 2)
    assert not manifest_is_fresh(manifest, tmp_path)


def test_loading_definitions_under_dagster_dev_leaves_a_fresh_manifest_alone(tmp_path):
    """A code-location load (the code server, each run worker) under `dagster dev` neither parses nor locks."""
    import os
    import subprocess
    import sys

    from orchestration.lib.dbt import dbt_project, ensure_manifest, manifest_is_fresh

    manifest = ensure_manifest()
    assert manifest_is_fresh()
    before = manifest.stat().st_mtime_ns
    env = {**os.environ, "DAGSTER_IS_DEV_CLI": "1", "CRIMELAKE_HOME": str(tmp_path / "home"),
           "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}
    # The load fails loudly if it parses or takes the lock dagster-dbt's own preparation takes.
    load = ("import dagster_dbt.dbt_project as p, orchestration.lib.dbt as d\n"
            "def refuse(*a, **k): raise SystemExit('the load ran dbt parse or took the manifest lock')\n"
            "p.run_with_concurrent_update_guard = d.parse_manifest = refuse\n"
            "from orchestration.definitions import defs\n"
            "assert defs().resolve_asset_graph().get_all_asset_keys()\n")
    proc = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True, text=True,
                          cwd=dbt_project.project_dir.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert manifest.stat().st_mtime_ns == before


def test_a_stale_manifest_is_prepared_under_dagster_dev_only(tmp_path, monkeypatch):
    import os

    import orchestration.lib.dbt as dbt_lib

    (tmp_path / "dbt_project.yml").write_text("name: p\n")
    manifest = tmp_path / "target" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    parsed = []
    monkeypatch.setattr(dbt_lib, "parse_manifest", lambda path: parsed.append(path))
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")
    assert not dbt_lib.prepare_if_dev(manifest, tmp_path)
    os.utime(tmp_path / "dbt_project.yml", ns=(manifest.stat().st_mtime_ns + 10**9,) * 2)
    monkeypatch.delenv("DAGSTER_IS_DEV_CLI")
    assert not dbt_lib.prepare_if_dev(manifest, tmp_path)
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")
    assert dbt_lib.prepare_if_dev(manifest, tmp_path)
    assert parsed == [manifest]


def test_every_check_says_what_it_guards_and_the_reconciliation_warning_says_where_to_look():
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    described = {k: graph.get_check_spec(k).description or "" for k in graph.asset_check_keys}
    assert len(described) > 80
    assert [k for k, d in described.items() if len(d) < 20] == []
    unique = next(d for k, d in described.items() if k.name.startswith("unique_") and "record_id" in k.name)
    assert "is unique" in unique and "blocks" in unique
    [warning] = [d for k, d in described.items() if k.name == "assert_force_exports_match_police_uk"]
    assert "WARN" in warning and "look for duplicated export rows" in warning


def _definitions_in_a_fresh_process(home, script: str, **env_extra):
    """Load the definitions in a new interpreter for `home` (the partitions are read once per process)."""
    import os
    import subprocess
    import sys

    from orchestration.lib.dbt import dbt_project

    env = {k: v for k, v in os.environ.items() if k != "CRIMELAKE_FIRST_MONTH"}
    env |= {"CRIMELAKE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **env_extra}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          cwd=dbt_project.project_dir.parent)


FIRST_AND_LAST = """
import dagster as dg
from orchestration.definitions import defs
from orchestration.lib.partitions import last_complete_month
graph = defs().resolve_asset_graph()
firsts = {graph.get(k).partitions_def.get_first_partition_key() for k in graph.get_all_asset_keys()
          if isinstance(graph.get(k).partitions_def, dg.TimeWindowPartitionsDefinition)}
lasts = {graph.get(k).partitions_def.get_last_partition_key() for k in graph.get_all_asset_keys()
         if isinstance(graph.get(k).partitions_def, dg.TimeWindowPartitionsDefinition)}
assert lasts == {last_complete_month()}, lasts
print(",".join(sorted(firsts)))
"""


def test_partitions_start_at_the_first_landed_month(tmp_path):
    home = tmp_path / "home"
    for source, month in (("police_uk", "2024-05"), ("la_reports", "2024-03"), ("police_uk", "2024-04")):
        (home / "landing" / source / month).mkdir(parents=True)
    (home / "landing" / "police_uk" / "not-a-month").mkdir()
    proc = _definitions_in_a_fresh_process(home, FIRST_AND_LAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "2024-03"

    # Nothing landed: one month, the last complete one.
    empty = tmp_path / "empty"
    proc = _definitions_in_a_fresh_process(empty, FIRST_AND_LAST + "print(last_complete_month())\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, last = proc.stdout.split()
    assert first == last

    # A deployment expecting older history fixes the first month; a bad value is named.
    proc = _definitions_in_a_fresh_process(home, FIRST_AND_LAST, CRIMELAKE_FIRST_MONTH="2019-01")
    assert proc.stdout.strip() == "2019-01"
    proc = _definitions_in_a_fresh_process(home, FIRST_AND_LAST, CRIMELAKE_FIRST_MONTH="2019-13")
    assert proc.returncode != 0 and "CRIMELAKE_FIRST_MONTH must be a month as YYYY-MM" in proc.stderr


def test_a_month_landed_before_the_first_partition_waits_for_a_reload(tmp_path):
    home = tmp_path / "home"
    (home / "landing" / "police_uk" / "2024-03").mkdir(parents=True)
    script = """
import os
from pathlib import Path
from crimelake.config import Settings
from orchestration.defs.ingest.automation import before_first_partition
settings = Settings.from_env()
assert before_first_partition(settings) == []
(settings.landing / "police_uk" / "2023-11").mkdir()
print(before_first_partition(settings)[0])
"""
    proc = _definitions_in_a_fresh_process(home, script)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("landing/police_uk/2023-11: before 2024-03") and "reload" in proc.stdout
