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

from crimelake import engine
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
