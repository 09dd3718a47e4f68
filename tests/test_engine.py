"""Engine selection outside Spark itself: what CRIMELAKE_ENGINE picks (dbt executable and target, the line `crimelake
run` prints), and gold exports read from the Delta marts a Spark build wrote, with the DuckDB export's semantics."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from crimelake import engine, lake
from orchestration.lib.warehouse import export_engine_mart, export_spark_mart


def test_describe_names_the_engine_and_requires_spark_remote(monkeypatch):
    monkeypatch.delenv("CRIMELAKE_ENGINE", raising=False)
    assert engine.describe().startswith("DuckDB")
    monkeypatch.setenv("CRIMELAKE_ENGINE", "spark")
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    with pytest.raises(RuntimeError, match="SPARK_REMOTE.*Running dbt on Spark"):
        engine.describe()
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15002")
    assert "sc://127.0.0.1:15002" in engine.describe() and "lake/spark" in engine.describe()


def test_dbt_resource_follows_the_engine(monkeypatch):
    from orchestration.lib.dbt import DBT_EXECUTABLE, dbt_resource

    duck = dbt_resource("duckdb")
    assert duck.dbt_executable == DBT_EXECUTABLE and duck.target is None  # the profile's default target
    monkeypatch.setenv("CRIMELAKE_ENGINE", "duckdb")
    assert dbt_resource().target is None
    if engine.spark_tool("dbt") is None:
        with pytest.raises(RuntimeError, match="dbt-spark"):
            dbt_resource("spark")
        return
    spark = dbt_resource("spark")
    assert spark.target == "spark" and spark.dbt_executable == engine.spark_tool("dbt")
    assert spark.dbt_executable != DBT_EXECUTABLE


def mart(months: list[str], value: int) -> pa.Table:
    return pa.table({"h3_cell": [f"c{i}" for i in range(len(months))], "month": months,
                     "incident_count": pa.array([value] * len(months), pa.int64())})


def counts(path) -> dict[str, int]:
    t = lake.read(path)
    return dict(zip(t.column("month").to_pylist(), t.column("incident_count").to_pylist(), strict=True))


def test_spark_mart_export_replaces_only_the_runs_months(tmp_path):
    source, gold = tmp_path / "spark" / "marts" / "m", tmp_path / "gold" / "m"
    write_deltalake(str(source), mart(["2024-01", "2024-02", "2024-03"], 1))
    written, replaced = export_spark_mart(source, gold, partition_column="month", months=("2024-02", "2024-03"))
    assert replaced == "whole table" and written.rows == 3  # no gold table yet: written whole, partitioned
    assert lake.partitioning(gold) == ["month"]

    # A later build changes every month; an export of 2024-02 replaces that month only.
    write_deltalake(str(source), mart(["2024-01", "2024-02", "2024-03"], 5), mode="overwrite")
    written, replaced = export_spark_mart(source, gold, partition_column="month", months=("2024-02", "2024-02"))
    assert replaced == "2024-02..2024-02" and written.rows == 1
    assert counts(gold) == {"2024-01": 1, "2024-02": 5, "2024-03": 1}

    written, replaced = export_spark_mart(source, gold)  # a whole-table mart: replaced whole
    assert replaced == "whole table" and counts(gold) == {"2024-01": 5, "2024-02": 5, "2024-03": 5}
    with pytest.raises(FileNotFoundError, match="Spark build"):
        export_spark_mart(tmp_path / "spark" / "marts" / "missing", gold)


def test_gold_export_reads_the_engines_marts(settings, monkeypatch):
    monkeypatch.setenv("CRIMELAKE_ENGINE", "spark")
    source = settings.home / engine.SPARK_OUTPUT / "marts" / "fct_cell_month_counts"
    write_deltalake(str(source), mart(["2024-01"], 3))
    written, _, dataset = export_engine_mart(settings, "fct_cell_month_counts", settings.gold("fct_cell_month_counts"),
                                             partition_column="month", months=("2024-01", "2024-01"))
    assert written.rows == 1 and counts(settings.gold("fct_cell_month_counts")) == {"2024-01": 3}
    # Lineage names the Spark table it read, with its Delta version.
    assert dataset.name == "spark/marts/fct_cell_month_counts" and dataset.version == "0"
    monkeypatch.setenv("CRIMELAKE_ENGINE", "duckdb")
    with pytest.raises(Exception, match="crimelake.duckdb|fct_cell_month_counts"):
        export_engine_mart(settings, "fct_cell_month_counts", settings.gold("other"))  # no warehouse built


def test_crimelake_run_on_spark_without_its_server_stops_before_ingesting(settings, monkeypatch):
    from typer.testing import CliRunner

    from crimelake.cli import app
    from crimelake.simulate import generate

    generate(settings.landing, seed=3, forces=["city-of-london"], months=1, incidents=20, defect_rate=0)
    monkeypatch.setenv("CRIMELAKE_ENGINE", "spark")
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    result = CliRunner().invoke(app, ["run", "--home", str(settings.home)])
    assert result.exit_code == 2 and "needs SPARK_REMOTE" in result.output, result.output
    assert not lake.table_exists(settings.bronze("police_uk", "street"))
    monkeypatch.setenv("CRIMELAKE_ENGINE", "duckdb")
    assert "dbt engine: DuckDB" in CliRunner().invoke(app, ["run", "--home", str(settings.home)]).output
