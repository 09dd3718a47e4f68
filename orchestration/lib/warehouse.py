"""Reading the dbt warehouse into the lake: marts exported to gold Delta tables as record batch streams, so an
export holds one batch in memory, never a whole mart. The warehouse is the DuckDB file, or with
CRIMELAKE_ENGINE=spark the Delta tables the Spark build wrote under lake/spark."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from crimelake.lake import (
    WriteResult,
    partitioning,
    replace_table,
    same_schema,
    table_exists,
    write_by_chunks,
)

BATCH_ROWS = 100_000
# The reader shares the machine with Dagster; DuckDB's default (80% of RAM) is far more than a streamed scan needs.
MEMORY_LIMIT = os.environ.get("CRIMELAKE_DUCKDB_MEMORY_LIMIT", "1500MB")


def export_mart(warehouse: Path, relation: str, path: Path, *, partition_column: str | None = None,
                months: tuple[str, str] | None = None) -> tuple[WriteResult, str]:
    """Export a warehouse relation to a Delta table; returns the write and what was replaced.

    Without a partition column the table is replaced whole. With one, only `months` (inclusive) are read and
    replaced; the whole table is rewritten (partitioned) instead when there is no table yet, when it is partitioned
    otherwise or has another schema, or when no months are given. A long range is written a few months per commit
    (`crimelake.lake.write_by_chunks`), so memory does not grow with the months exported.
    """
    con = duckdb.connect(str(warehouse), read_only=True, config={"memory_limit": MEMORY_LIMIT, "threads": 1})
    try:
        everything = con.sql(f"select * from {relation}")
        if partition_column is None:
            return replace_table(path, everything.to_arrow_reader(BATCH_ROWS)), "whole table"
        schema = everything.limit(0).to_arrow_table().schema
        whole = (months is None or not table_exists(path) or partitioning(path) != [partition_column]
                 or not same_schema(path, schema))
        span = _span(con.sql(f"select min({partition_column}), max({partition_column}) from {relation}")
                     .fetchall()[0]) if whole else months

        def rows_between(first, last, nulls):
            if first is None:
                return everything.to_arrow_reader(BATCH_ROWS)
            where = f"{partition_column} between ? and ?" + (f" or {partition_column} is null" if nulls else "")
            return con.sql(f"select * from {relation} where {where}", params=[first, last]).to_arrow_reader(
                BATCH_ROWS)

        written = write_by_chunks(path, rows_between, span, partition_column=partition_column, whole=whole)
        return written, "whole table" if whole else f"{months[0]}..{months[1]}"
    finally:
        con.close()


def _span(bounds) -> tuple[str, str] | None:
    first, last = bounds or (None, None)
    return None if first is None else (str(first), str(last))


def export_spark_mart(source: Path, path: Path, *, partition_column: str | None = None,
                      months: tuple[str, str] | None = None) -> tuple[WriteResult, str]:
    """`export_mart` from a mart the Spark build wrote as a Delta table (read with deltalake, streamed by batch):
    the same partition-range semantics."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

    if not table_exists(source):
        raise FileNotFoundError(f"{source}: no Delta table; the Spark build has not built this mart")
    dataset = DeltaTable(str(source)).to_pyarrow_dataset()

    def rows(where=None):
        return dataset.scanner(filter=where, batch_size=BATCH_ROWS).to_reader()

    if partition_column is None:
        return replace_table(path, rows()), "whole table"
    whole = (months is None or not table_exists(path) or partitioning(path) != [partition_column]
             or not same_schema(path, dataset.schema))
    column = ds.field(partition_column)
    if whole:
        values = dataset.to_table(columns=[partition_column]).column(partition_column)
        span = _span((pc.min(values).as_py(), pc.max(values).as_py()) if len(values) else None)
    else:
        span = months

    def rows_between(first, last, nulls):
        if first is None:
            return rows()
        where = (column >= first) & (column <= last)
        return rows(where | column.is_null() if nulls else where)

    written = write_by_chunks(path, rows_between, span, partition_column=partition_column, whole=whole)
    return written, "whole table" if whole else f"{months[0]}..{months[1]}"


def export_engine_mart(settings, mart: str, path: Path, *, partition_column: str | None = None,
                       months: tuple[str, str] | None = None):
    """Export the mart `mart` of the engine's warehouse (CRIMELAKE_ENGINE) to `path`; returns the write, what was
    replaced and the lineage dataset it was read from."""
    from crimelake import lineage
    from crimelake.engine import SPARK_OUTPUT, engine_from_env

    if engine_from_env() == "spark":
        source = settings.home / SPARK_OUTPUT / "marts" / mart
        written, replaced = export_spark_mart(source, path, partition_column=partition_column, months=months)
        from crimelake.lake import version

        return written, replaced, lineage.delta(settings, source, version(source))
    written, replaced = export_mart(settings.warehouse, f"marts.{mart}", path, partition_column=partition_column,
                                    months=months)
    return written, replaced, lineage.warehouse(settings, f"marts.{mart}")


def query(warehouse: Path, sql: str) -> list[tuple]:
    """A short read of the warehouse (connect, fetch, close: DuckDB lets one process at a time hold the file)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
