"""Reading the dbt warehouse (DuckDB) into the lake: marts exported to gold Delta tables as record batch streams,
so an export holds one batch in memory, never a whole mart."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from crimelake.lake import WriteResult, partitioning, replace_months, replace_table, same_schema, table_exists

BATCH_ROWS = 100_000
# The reader shares the machine with Dagster; DuckDB's default (80% of RAM) is far more than a streamed scan needs.
MEMORY_LIMIT = os.environ.get("CRIMELAKE_DUCKDB_MEMORY_LIMIT", "1500MB")


def export_mart(warehouse: Path, relation: str, path: Path, *, partition_column: str | None = None,
                months: tuple[str, str] | None = None) -> tuple[WriteResult, str]:
    """Export a warehouse relation to a Delta table; returns the write and what was replaced.

    Without a partition column the table is replaced whole. With one, only `months` (inclusive) are read and
    replaced; the whole table is rewritten (partitioned) instead when there is no table yet, when it is partitioned
    otherwise or has another schema, or when no months are given.
    """
    con = duckdb.connect(str(warehouse), read_only=True, config={"memory_limit": MEMORY_LIMIT, "threads": 1})
    try:
        everything = con.sql(f"select * from {relation}")
        if partition_column is None:
            return replace_table(path, everything.to_arrow_reader(BATCH_ROWS)), "whole table"
        schema = everything.limit(0).to_arrow_table().schema
        whole = (months is None or not table_exists(path) or partitioning(path) != [partition_column]
                 or not same_schema(path, schema))
        if whole:
            written = replace_table(path, everything.to_arrow_reader(BATCH_ROWS), partition_by=[partition_column])
            return written, "whole table"
        rows = con.sql(f"select * from {relation} where {partition_column} between ? and ?", params=list(months))
        written = replace_months(path, rows.to_arrow_reader(BATCH_ROWS), months, partition_column=partition_column)
        return written, f"{months[0]}..{months[1]}"
    finally:
        con.close()


def query(warehouse: Path, sql: str) -> list[tuple]:
    """A short read of the warehouse (connect, fetch, close: DuckDB lets one process at a time hold the file)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
