"""The dbt project on Spark: the same models built on a small lake with the DuckDB target and with the spark target
(dbt-spark over Spark Connect, against a local Sail server) hold the same marts row for row, and every dbt test
passes on both. On Sail the tables are known only to the Spark session that built them, so each build there is a
full build into an empty lake/spark (see crimelake.engine.clear_spark_output)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from crimelake import engine, lake
from crimelake.pipeline import run_landed
from crimelake.simulate import generate
from orchestration.lib.dbt import DBT_DIR, DBT_EXECUTABLE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(engine.spark_tool("sail") is None or engine.spark_tool("dbt") is None,
                       reason="Sail and dbt-spark are not installed (the project's spark extra; `make install` "
                              "installs it in .venv-spark)"),
]

def dbt_build(home: Path, target: str, out: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """`dbt build` on one target, writing its artefacts under `out`; the run results (every node's status)."""
    dbt = engine.spark_tool("dbt") if target == "spark" else DBT_EXECUTABLE
    command = [dbt, "build", "--profiles-dir", str(DBT_DIR), "--project-dir", str(DBT_DIR),
               "--target", target, "--target-path", str(out / "target"), "--log-path", str(out / "logs"), *args]
    proc = subprocess.run(command, cwd=DBT_DIR, capture_output=True, text=True,
                          env={**os.environ, "CRIMELAKE_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                               **(env or {})})
    assert proc.returncode == 0, f"dbt build --target {target} failed:\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"
    return json.loads((out / "target" / "run_results.json").read_text())


def statuses(results: dict) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in results["results"]}


def duckdb_marts(warehouse: Path) -> dict[str, pa.Table]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = [n for (n,) in con.execute("select table_name from information_schema.tables "
                                          "where table_schema = 'marts' order by table_name").fetchall()]
        return {n: con.sql(f"select * from marts.{n}").to_arrow_table() for n in names}
    finally:
        con.close()


def spark_mart(home: Path, name: str) -> pa.Table:
    from deltalake import DeltaTable

    return DeltaTable(str(home / engine.SPARK_OUTPUT / "marts" / name)).to_pyarrow_table()


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([(c, "ascending") for c in table.column_names])


def differing_rows(left: pa.Table, right: pa.Table) -> list:
    """Rows of either table that the other lacks (up to five of each), for the failure message."""
    a, b = left.to_pylist(), right.to_pylist()
    return [r for r in a if r not in b][:5] + [r for r in b if r not in a][:5]


def assert_same_marts(home: Path, expected: dict[str, pa.Table]) -> None:
    built = sorted(p.name for p in (home / engine.SPARK_OUTPUT / "marts").iterdir() if p.is_dir())
    assert built == sorted(expected)
    for name, duck in expected.items():
        spark = spark_mart(home, name)
        assert set(spark.column_names) == set(duck.column_names), name
        spark = spark.select(duck.column_names)
        assert [str(t) for t in spark.schema.types] == [str(t) for t in duck.schema.types], name
        assert spark.num_rows == duck.num_rows, name
        # Same types; nullability flags are the engines' own and are not compared.
        spark = spark.cast(duck.schema)
        assert sorted_rows(spark).equals(sorted_rows(duck)), \
            f"{name}: rows of DuckDB then Spark that the other lacks: {differing_rows(duck, spark)}"


@pytest.fixture
def small_lake(settings):
    """Three forces over three months (two send force exports), bronze loaded by the real ingest."""
    generate(settings.landing, seed=5, forces=["bedfordshire", "cambridgeshire", "city-of-london"], months=3,
             incidents=400, defect_rate=0.0)
    assert all(r.success for r in run_landed(settings))
    from crimelake.ingest.engine import ensure_bronze_tables

    ensure_bronze_tables(settings)
    assert engine.write_cell_geometry(settings.home) > 0
    return settings


def test_spark_build_equals_duckdb_build(small_lake, tmp_path):
    settings = small_lake
    home = settings.home.resolve()

    started = time.perf_counter()
    duck = dbt_build(home, "local", tmp_path / "duckdb")
    duckdb_seconds = time.perf_counter() - started
    expected = duckdb_marts(settings.warehouse)
    assert expected["fct_incidents"].num_rows > 0 and expected["dim_cells"].num_rows > 0

    engine.clear_spark_output(home)
    with engine.sail_server(log=tmp_path / "sail.log") as url:
        started = time.perf_counter()
        spark = dbt_build(home, "spark", tmp_path / "spark", env={"SPARK_REMOTE": url})
        spark_seconds = time.perf_counter() - started

        # The same nodes ran on both engines, and every model, seed and test passed on both.
        assert set(statuses(spark)) == set(statuses(duck))
        for results in (duck, spark):
            assert set(statuses(results).values()) <= {"success", "pass"}, statuses(results)
        assert_same_marts(home, expected)

    print(f"\ndbt build on the test lake: DuckDB {duckdb_seconds:.1f} s, Spark on Sail {spark_seconds:.1f} s")


def test_engine_setting_is_checked(monkeypatch):
    monkeypatch.setenv("CRIMELAKE_ENGINE", "spark")
    assert engine.engine_from_env() == "spark"
    monkeypatch.delenv("CRIMELAKE_ENGINE")
    assert engine.engine_from_env() == "duckdb"
    monkeypatch.setenv("CRIMELAKE_ENGINE", "postgres")
    with pytest.raises(ValueError, match="CRIMELAKE_ENGINE"):
        engine.engine_from_env()


def test_cell_geometry_table_is_written_once_per_cell(tmp_path):
    import h3
    from deltalake import DeltaTable, write_deltalake

    cell = h3.latlng_to_cell(52.13, -0.47, 9)
    other = h3.grid_ring(cell, 1)[0]
    bronze = tmp_path / "lake" / "bronze" / "police_uk" / "street"
    write_deltalake(str(bronze), pa.table({"h3_cell": [cell, cell, None]}))
    assert engine.write_cell_geometry(tmp_path) == 1
    write_deltalake(str(bronze), pa.table({"h3_cell": [other]}), mode="append")
    assert engine.write_cell_geometry(tmp_path) == 1
    assert engine.write_cell_geometry(tmp_path) == 0
    table = DeltaTable(str(tmp_path / engine.CELL_GEOMETRY)).to_pandas().set_index("h3_cell")
    assert sorted(table.index) == sorted([cell, other])
    lat, lon = h3.cell_to_latlng(cell)
    assert (table.loc[cell, "centre_latitude"], table.loc[cell, "centre_longitude"]) == (lat, lon)
    assert cell in table.loc[other, "neighbours_ring1"].split(",")


def gold_equal(left: pa.Table, right: pa.Table) -> bool:
    """Same columns (in any order), same types, same rows (in any order)."""
    if set(left.column_names) != set(right.column_names) or left.num_rows != right.num_rows:
        return False
    right = right.select(left.column_names)
    if [str(t) for t in right.schema.types] != [str(t) for t in left.schema.types]:
        return False
    return sorted_rows(right.cast(left.schema)).equals(sorted_rows(left))


def run_events(settings, run_id: str, kind: str) -> list:
    import dagster as dg

    return [e.dagster_event for e in dg.DagsterInstance.get().all_logs(run_id)
            if e.dagster_event and e.dagster_event.event_type_value == kind]


def checks_of_run(settings, run_id: str) -> dict[str, bool]:
    """Check name -> passed, for every asset check the run evaluated."""
    out = {}
    for e in run_events(settings, run_id, "ASSET_CHECK_EVALUATION"):
        data = e.asset_check_evaluation_data
        out[f"{data.asset_key.to_user_string()}:{data.check_name}"] = data.passed
    return out


def pipeline_home(root: Path, monkeypatch, engine_name: str, url: str | None = None):
    """The small simulated landing ingested and transformed by the real pipeline on one engine; the home's
    settings, the transform's result, its checks and the assets it materialized."""
    from crimelake.config import Settings
    from crimelake.pipeline import run_transform

    for var in ("CRIMELAKE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "SPARK_REMOTE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CRIMELAKE_ENGINE", engine_name)
    if url:
        monkeypatch.setenv("SPARK_REMOTE", url)
    settings = Settings.from_env(root / engine_name).prepare()
    generate(settings.landing, seed=11, forces=["bedfordshire", "city-of-london"], months=3, incidents=300,
             defect_rate=0.0)
    assert all(r.success for r in run_landed(settings))
    tr = run_transform(settings)
    materialized = {e.asset_key.to_user_string() for e in run_events(settings, tr.run_id, "ASSET_MATERIALIZATION")}
    return settings, tr, checks_of_run(settings, tr.run_id), materialized


def test_pipeline_on_spark_exports_the_same_gold_tables(tmp_path, monkeypatch):
    """`crimelake run`'s path (ingest runs, then the transform job: dbt steps, gold exports, public tables) with
    CRIMELAKE_ENGINE=spark against a Sail server gives the gold tables of a DuckDB run of the same landing, with the
    same dbt checks evaluated and passing."""
    from crimelake import lake

    duck, duck_run, duck_checks, duck_assets = pipeline_home(tmp_path, monkeypatch, "duckdb")
    assert duck_run.success and duck_run.failed_checks == [], duck_run.problems
    with engine.sail_server(log=tmp_path / "sail.log") as url:
        spark, spark_run, spark_checks, spark_assets = pipeline_home(tmp_path, monkeypatch, "spark", url)
    assert spark_run.success and spark_run.failed_checks == [], (spark_run.problems, spark_run.failed_checks)

    assert spark_checks == duck_checks and len(spark_checks) > 20
    assert all(spark_checks.values()), [k for k, ok in spark_checks.items() if not ok]
    assert spark_assets == duck_assets
    # The marts were built on Spark (Delta tables under lake/spark), and gold was exported from them.
    assert (spark.home / engine.SPARK_OUTPUT / "marts" / "fct_incidents" / "_delta_log").is_dir()
    # Nothing on that path built the DuckDB warehouse.
    assert not spark.warehouse.exists()
    for table in ("fct_incidents", "fct_cell_month_counts", "dim_cells"):
        # The two homes ingested the same files in runs of their own: only the ingest run ids differ.
        expected, got = (t.drop_columns([c for c in t.column_names if c == "_ingest_run_id"])
                         for t in (lake.read(duck.gold(table)), lake.read(spark.gold(table))))
        assert expected.num_rows > 0, table
        assert gold_equal(expected, got), (table, differing_rows(expected, got.select(expected.column_names)))
    lineage = (spark.home / "lineage" / "openlineage.jsonl").read_text()
    assert "spark/marts/fct_incidents" in lineage


def test_spark_engine_without_spark_remote_fails_naming_it(tmp_path, monkeypatch):
    from crimelake.config import Settings
    from crimelake.pipeline import run_transform

    for var in ("CRIMELAKE_HOME", "DAGSTER_HOME", "SPARK_REMOTE"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings.from_env(tmp_path / "home").prepare()
    generate(settings.landing, seed=3, forces=["city-of-london"], months=1, incidents=50, defect_rate=0.0)
    assert all(r.success for r in run_landed(settings))
    monkeypatch.setenv("CRIMELAKE_ENGINE", "spark")
    tr = run_transform(settings)
    assert not tr.success
    errors = []
    for event in run_events(settings, tr.run_id, "STEP_FAILURE"):
        error = event.event_specific_data.error
        while error is not None:
            errors.append(error.message)
            error = error.cause
    assert any("SPARK_REMOTE" in e and "Running dbt on Spark" in e for e in errors), errors


SESSIONS_SCRIPT = """
import sys
from pyspark.sql import SparkSession

first = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
first.sql("create schema if not exists marts")
first.sql(f"create table marts.t using delta location '{sys.argv[2]}' as select 1 as a")
second = SparkSession.builder.remote(sys.argv[1]).create()
print(first.catalog.databaseExists("marts"), second.catalog.databaseExists("marts"))
"""


def test_sail_keeps_its_catalog_per_session(tmp_path):
    """Why a Spark build on Sail is one dbt invocation per run (orchestration.lib.spark_build): a second Spark
    session on the same server does not see a schema the first created. When this fails, Sail shares its catalog
    across sessions and the dbt steps could each run their own build on one long-lived server."""
    python = engine.SPARK_ENV / "bin" / "python"
    if not python.exists():
        pytest.skip("the Spark environment (.venv-spark) has no Python of its own here")
    with engine.sail_server(log=tmp_path / "sail.log") as url:
        script = tmp_path / "sessions.py"
        script.write_text(SESSIONS_SCRIPT)
        proc = subprocess.run([str(python), str(script), url, str(tmp_path / "t")],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["True", "False"]


def test_the_benchmarks_engine_builds_cover_the_months_asked_on_both_engines(small_lake):
    """The national benchmark's engine stages: a full build of the same bronze on each engine, in scratch homes,
    here of the first month only."""
    from benchmarks.dbt_engines import bronze_rows, dbt_full_build

    home = small_lake.home.resolve()
    first = sorted(lake.read(small_lake.bronze("police_uk", "street"), columns=["month"])
                   .column("month").unique().to_pylist())[0]
    builds = {e: dbt_full_build(home, e, through=first) for e in ("duckdb", "spark")}
    for e, b in builds.items():
        assert b["failed"] == [] and b["nodes"] > 100, (e, b)
    assert builds["duckdb"]["nodes"] == builds["spark"]["nodes"]
    assert 0 < builds["duckdb"]["rows"] == bronze_rows(home, first) < bronze_rows(home)
    con = duckdb.connect(str(home.parent / "dbt-duckdb" / "warehouse" / "crimelake.duckdb"), read_only=True)
    try:
        assert con.execute("select distinct month from marts.fct_incidents").fetchall() == [(first,)]
    finally:
        con.close()
    assert set(spark_mart(home.parent / "dbt-spark", "fct_incidents").column("month").to_pylist()) == {first}
