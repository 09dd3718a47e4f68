"""The one Delta writer: every table in the lake is written through here.

Delta on local disk is unsafe with concurrent writers, so each table has one owning asset and a month is replaced
atomically with an overwrite by predicate: re-running a month, or receiving the same file twice, changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

_MONTH = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class WriteResult:
    path: Path
    version: int
    rows: int


def table_exists(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def replace_month(path: Path, table: pa.Table, month: str, *, partition_column: str = "month") -> WriteResult:
    """Replace one month partition of a Delta table with `table` (which may be empty) in a single commit."""
    if not _MONTH.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    months = set(table.column(partition_column).unique().to_pylist()) if table.num_rows else set()
    if months - {month}:
        raise ValueError(f"rows for {sorted(months - {month})} cannot replace partition {month} of {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(
        str(path),
        table,
        mode="overwrite",
        predicate=f"{partition_column} = '{month}'",
        partition_by=[partition_column],
    )
    return WriteResult(path, DeltaTable(str(path)).version(), table.num_rows)


def replace_table(path: Path, table: pa.Table) -> WriteResult:
    """Replace a whole table (schema included) in one commit; earlier versions stay readable by time travel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), table, mode="overwrite", schema_mode="overwrite")
    return WriteResult(path, DeltaTable(str(path)).version(), table.num_rows)


def append(path: Path, table: pa.Table) -> WriteResult:
    """Append rows (for append-only logs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), table, mode="append")
    return WriteResult(path, DeltaTable(str(path)).version(), table.num_rows)


def read(path: Path, *, month: str | None = None, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
    """Read a table (optionally one month, optionally as of a version); FileNotFoundError if there is none."""
    try:
        dt = DeltaTable(str(path), version=version)
    except TableNotFoundError:
        raise FileNotFoundError(f"no Delta table at {path}") from None
    filters = [("month", "=", month)] if month else None
    return dt.to_pyarrow_table(filters=filters, columns=columns)


def version(path: Path) -> int | None:
    if not table_exists(path):
        return None
    return DeltaTable(str(path)).version()
