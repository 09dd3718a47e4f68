"""The one Delta writer: every table in the lake is written through here.

Delta on local disk is unsafe with concurrent writers, so each table has one owning asset and a month is replaced
atomically with an overwrite by predicate: re-running a month, or receiving the same file twice, changes nothing.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction

_MONTH = re.compile(r"^\d{4}-\d{2}$")
# Labels of the periods a table can be partitioned by; both sort as text in calendar order.
_PERIODS = {"month": _MONTH, "quarter": re.compile(r"^\d{4}-Q[1-4]$")}


@dataclass(frozen=True)
class WriteResult:
    path: Path
    version: int
    rows: int


def table_exists(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def _refuse_other_months(path: Path, table: pa.Table, month: str, partition_column: str) -> None:
    """ValueError unless `month` is a month label and every row of `table` belongs to it."""
    if not _MONTH.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    months = set(table.column(partition_column).unique().to_pylist()) if table.num_rows else set()
    if months - {month}:
        raise ValueError(f"rows for {sorted(months - {month})} cannot replace partition {month} of {path}")


def replace_month(path: Path, table: pa.Table, month: str, *, partition_column: str = "month") -> WriteResult:
    """Replace one month partition of a Delta table with `table` (which may be empty) in a single commit. The rows
    are written in the order given: Delta's writer may write the record batches of a table in more than one chunk
    in any order, so the table goes to it in one."""
    _refuse_other_months(path, table, month, partition_column)
    table = table.combine_chunks()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Given the table itself, the writer commits on its state and leaves it at the new version: the log is read
    # once, not again after the commit to learn the version.
    target = DeltaTable(str(path)) if table_exists(path) else str(path)
    write_deltalake(
        target,
        table,
        mode="overwrite",
        predicate=f"{partition_column} = '{month}'",
        partition_by=[partition_column],
    )
    return WriteResult(path, (target if isinstance(target, DeltaTable) else DeltaTable(str(path))).version(),
                       table.num_rows)


# Staged writes: a month's data files written before the checks that guard it have passed, committed after. -----

@dataclass(frozen=True)
class StagedMonth:
    """One month partition's data files, written into a table's folder but not committed: no reader sees them
    until `commit_staged` adds them to the log in one commit (replacing the month), and `discard_staged` deletes
    them. A staged file left by a process killed in between is in no version, so vacuum removes it."""

    path: Path
    month: str
    partition_column: str
    rows: int
    files: tuple[Path, ...]
    actions: tuple[AddAction, ...]


_STATS_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_large_string,
                pa.types.is_date)


def _present_values(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """The values a column holds; for a dictionary column, only the dictionary entries its rows use. Other columns
    are read where they lie, chunk by chunk, rather than copied into one."""
    if not pa.types.is_dictionary(col.type):
        return col
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr.dictionary.take(pc.drop_null(pc.unique(arr.indices)))


def file_stats(table: pa.Table) -> str:
    """A data file's Delta statistics (numRecords, and per column nullCount, minValues and maxValues): what a
    reader uses to skip files. Minimum and maximum are given for numbers, text and dates (a column of nulls or
    NaNs alone has none); other types have their null count only, which the protocol allows."""
    mins, maxs, nulls = {}, {}, {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        nulls[name] = col.null_count
        t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if col.null_count == len(col) or not any(is_(t) for is_ in _STATS_TYPES):
            continue
        mm = pc.min_max(_present_values(col))
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None or hi is None or (isinstance(lo, float) and (lo != lo or hi != hi)):
            continue
        if pa.types.is_date(t):
            lo, hi = lo.isoformat(), hi.isoformat()
        mins[name], maxs[name] = lo, hi
    return json.dumps({"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
                      separators=(",", ":"))


# A column whose first rows hold at most one distinct value in this many has few values (categories, codes, names),
# not ids or coordinates.
_FEW = 4
_SAMPLE_ROWS = 4096


def few_distinct(col: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a column holds few distinct values, judged on its first rows."""
    head = col.slice(0, _SAMPLE_ROWS)
    return len(head) > 0 and pc.count_distinct(head, mode="all").as_py() * _FEW <= len(head)


def few_valued(table: pa.Table) -> list[str]:
    """The columns worth a Parquet dictionary: those already dictionary-encoded, and those of few distinct values."""
    return [name for name, col in zip(table.column_names, table.columns, strict=True)
            if pa.types.is_dictionary(col.type) or few_distinct(col)]


def stage_month(path: Path, table: pa.Table, month: str, *, partition_column: str = "month") -> StagedMonth:
    """Write one month's rows as a data file of an existing month-partitioned table, without committing it (see
    `StagedMonth`). Text columns may be dictionary-encoded; other columns must have the table's types.
    ValueError for rows of another month or a table partitioned otherwise."""
    _refuse_other_months(path, table, month, partition_column)
    dt = DeltaTable(str(path))
    if dt.metadata().partition_columns != [partition_column]:
        raise ValueError(f"{path} is not partitioned by [{partition_column!r}]")
    target = pa.schema(dt.schema().to_arrow())
    data = table.drop_columns([partition_column])
    want = [f for f in target if f.name != partition_column]
    if sorted(f.name for f in want) != sorted(data.column_names):
        raise ValueError(f"{path} has the columns {[f.name for f in want]}, the rows {data.column_names}")
    data = data.select([f.name for f in want])
    for i, f in enumerate(want):
        t = data.schema.field(i).type
        if t != f.type and not (pa.types.is_dictionary(t) and t.value_type == f.type):
            data = data.set_column(i, f.name, data.column(i).cast(f.type))
    if not data.num_rows:
        return StagedMonth(path, month, partition_column, 0, (), ())
    rel = f"{partition_column}={month}/part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    file = path / rel
    file.parent.mkdir(parents=True, exist_ok=True)
    # One dictionary per text column across the chunks: Parquet's writer falls back to plain text for the rest of a
    # column when an Arrow dictionary changes between chunks (a month arrives as one chunk per file), and would then
    # spell out and compress every row's file name and hash.
    data = data.unify_dictionaries()
    # No Arrow schema in the file: readers take its columns as the table's (a dictionary column as plain text).
    # Readers skip files on the Delta statistics given with the file (`file_stats`), so the Parquet writer does not
    # gather its own; and it builds dictionaries only for the columns of few values, not for ids and coordinates,
    # where it would fill one only to give up on it. Together about a third of the writer's time on a national month.
    pq.write_table(data, file, compression="snappy", store_schema=False, write_statistics=False,
                   use_dictionary=few_valued(data))
    action = AddAction(rel, file.stat().st_size, {partition_column: month}, int(time.time() * 1000), True,
                       file_stats(data))
    return StagedMonth(path, month, partition_column, data.num_rows, (file,), (action,))


def commit_staged(staged: StagedMonth) -> WriteResult:
    """Replace the staged month of its table with the staged files, in one commit."""
    dt = DeltaTable(str(staged.path))
    col = staged.partition_column
    dt.create_write_transaction(list(staged.actions), mode="overwrite", schema=dt.schema(), partition_by=[col],
                                partition_filters=[(col, "=", staged.month)])
    dt.update_incremental()
    return WriteResult(staged.path, dt.version(), staged.rows)


def discard_staged(staged: StagedMonth) -> None:
    """Delete staged files that are not to be committed."""
    for f in staged.files:
        f.unlink(missing_ok=True)

Rows = pa.Table | pa.RecordBatchReader


class _Counted:
    """A record batch stream that counts its rows and refuses rows outside a month range as they pass, so a
    partition can be replaced from a stream without holding it in memory."""

    def __init__(self, data: Rows, months: tuple[str, str] | None = None, column: str = "month"):
        self.reader = data.to_reader() if isinstance(data, pa.Table) else data
        self.months, self.column, self.rows = months, column, 0
        self.error: ValueError | None = None

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self.reader:
            if self.months and batch.num_rows:
                col = batch.column(self.column)
                outside = pc.invert(pc.and_(pc.greater_equal(col, self.months[0]), pc.less_equal(col, self.months[1])))
                if pc.any(pc.fill_null(outside, True)).as_py():
                    bad = sorted(set(pc.filter(col, pc.fill_null(outside, True)).to_pylist()), key=str)[:5]
                    self.error = ValueError(f"rows for {bad} fall outside the months {self.months[0]}.."
                                            f"{self.months[1]} being replaced")
                    raise self.error
            self.rows += batch.num_rows
            yield batch

    def write(self, path: Path, **kwargs) -> None:
        """write_deltalake over the stream; a refused row raises its ValueError (nothing is committed)."""
        try:
            write_deltalake(str(path), pa.RecordBatchReader.from_batches(self.reader.schema, self._batches()),
                            **kwargs)
        except Exception:
            if self.error is not None:
                raise self.error from None
            raise


def replace_table(path: Path, table: Rows, *, partition_by: list[str] | None = None) -> WriteResult:
    """Replace a whole table (schema and partitioning included) in one commit; earlier versions stay readable by
    time travel. `table` may be a record batch stream, written without being held in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    counted = _Counted(table)
    counted.write(path, mode="overwrite", schema_mode="overwrite", partition_by=partition_by)
    return WriteResult(path, DeltaTable(str(path)).version(), counted.rows)


# Periods one write of a partitioned table holds at most: Delta's writer keeps every partition of a write open
# until it commits, so one write of 36 national months of incidents peaked at 3.1 GB (6 months at a time: 1.9 GB).
WRITE_CHUNK_MONTHS = 6


def write_chunk(period: str = "month") -> int:
    """Periods per write of a long range (`CRIMELAKE_WRITE_CHUNK_MONTHS` months, default ``WRITE_CHUNK_MONTHS``;
    a third as many quarters, at least one)."""
    from crimelake.config import env_count

    months = env_count("CRIMELAKE_WRITE_CHUNK_MONTHS", WRITE_CHUNK_MONTHS)
    return max(1, months // 3) if period == "quarter" else months


def period_range(first: str, last: str) -> list[str]:
    """Every period from `first` to `last` inclusive: months (YYYY-MM) or quarters (YYYY-Qn), as the labels are."""
    if _PERIODS["quarter"].match(first) and _PERIODS["quarter"].match(last):
        a, b = (int(x[:4]) * 4 + int(x[6]) - 1 for x in (first, last))
        return [f"{k // 4:04d}-Q{k % 4 + 1}" for k in range(a, b + 1)]
    if not (_MONTH.match(first) and _MONTH.match(last)):
        raise ValueError(f"not a range of months or quarters: {first!r}..{last!r}")
    a, b = (int(x[:4]) * 12 + int(x[5:7]) - 1 for x in (first, last))
    return [f"{k // 12:04d}-{k % 12 + 1:02d}" for k in range(a, b + 1)]


def period_chunks(first: str, last: str, size: int) -> list[tuple[str, str]]:
    """`first`..`last` (months or quarters, inclusive) cut into consecutive ranges of at most `size` periods."""
    periods = period_range(first, last)
    return [(periods[i], periods[min(i + size, len(periods)) - 1]) for i in range(0, len(periods), size)]


def write_by_chunks(path: Path, rows_between, span: tuple[str, str] | None, *, partition_column: str = "month",
                    whole: bool = False, size: int | None = None) -> WriteResult:
    """Replace the periods of `span` of a partitioned table (with `whole`, the whole table, `span` being the
    periods the rows hold), a few periods per commit so that a write's memory does not grow with the range.

    `rows_between(first, last, nulls)` gives the rows of periods `first`..`last` (with `nulls`, the rows without a
    period too) as a table or record batch stream. Each chunk is one commit: part way through, the table holds the
    chunks written so far, which is why readers read released versions (crimelake.release). With `whole` and no
    `span` (no rows), the table is replaced by the empty rows of `rows_between(None, None, True)`."""
    if span is None:
        if not whole:
            raise ValueError("a partial replacement needs the span of periods it replaces")
        return replace_table(path, rows_between(None, None, True), partition_by=[partition_column])
    rows, written = 0, None
    chunks = period_chunks(span[0], span[1], size or write_chunk(partition_column))
    for i, (first, last) in enumerate(chunks):
        if whole and i == 0:
            written = replace_table(path, rows_between(first, last, True), partition_by=[partition_column])
        else:
            written = replace_months(path, rows_between(first, last, False), (first, last),
                                     partition_column=partition_column)
        rows += written.rows
    return WriteResult(path, written.version, rows)


def partitioning(path: Path) -> list[str] | None:
    """The partition columns of a table, or None when there is no table."""
    if not table_exists(path):
        return None
    return list(DeltaTable(str(path)).metadata().partition_columns)


def same_schema(path: Path, schema: pa.Schema) -> bool:
    """Whether rows of `schema` can be written into the table at `path` as they are."""
    from deltalake import Schema

    return Schema.from_arrow(schema).to_json() == DeltaTable(str(path)).schema().to_json()


def replace_months(path: Path, data: Rows, months: tuple[str, str], *, partition_column: str = "month") -> WriteResult:
    """Replace the month partitions `months[0]`..`months[1]` (inclusive) of a month-partitioned table with `data`
    (a table or a record batch stream, possibly empty) in one commit; other months are untouched, and the commit
    adds files under those months' partitions only. Creates the table if there is none. ValueError for a row
    outside the range, or a table partitioned otherwise or with another schema (replace it whole instead). A table
    partitioned by `quarter` takes a YYYY-Qn range the same way."""
    first, last = months
    label = _PERIODS.get(partition_column, _MONTH)
    if not (label.match(first) and label.match(last)) or first > last:
        shape = "YYYY-Qn" if partition_column == "quarter" else "YYYY-MM"
        raise ValueError(f"{partition_column}s must be a {shape} range, got {first!r}..{last!r}")
    reader = data.to_reader() if isinstance(data, pa.Table) else data
    existing = partitioning(path)
    if existing is not None:
        if existing != [partition_column]:
            raise ValueError(f"{path} is partitioned by {existing}, not [{partition_column!r}]: replace it whole")
        if not same_schema(path, reader.schema):
            raise ValueError(f"{path} has another schema than the rows given: replace it whole")
    path.parent.mkdir(parents=True, exist_ok=True)
    counted = _Counted(reader, (first, last), partition_column)
    counted.write(
        path,
        mode="overwrite",
        predicate=f"{partition_column} >= '{first}' and {partition_column} <= '{last}'",
        partition_by=[partition_column],
    )
    return WriteResult(path, DeltaTable(str(path)).version(), counted.rows)


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


# Maintenance ------------------------------------------------------------------------------------------------------

DEFAULT_RETENTION_HOURS = 7 * 24
MAINTAINED_LAYERS = ("bronze", "quarantine", "gold", "public")


@dataclass(frozen=True)
class MaintainResult:
    path: Path
    files_before: int
    files_after: int
    active_before: int
    active_after: int
    compacted: bool
    vacuumed: int
    retention_hours: int


def _files_on_disk(path: Path) -> int:
    return sum(1 for _ in path.rglob("*.parquet"))


def tables_under(root: Path, layers: tuple[str, ...] = MAINTAINED_LAYERS) -> list[Path]:
    """Every Delta table under the given layers of a lake root."""
    found = []
    for layer in layers:
        base = root / layer
        if base.is_dir():
            found += sorted(p.parent for p in base.rglob("_delta_log") if p.is_dir())
    return found


def _hours_since_version(dt: DeltaTable, v: int) -> int:
    import time

    for entry in dt.history():
        if entry.get("version") == v and entry.get("timestamp"):
            return int((time.time() * 1000 - entry["timestamp"]) // 3_600_000) + 1
    return 0


def maintain(path: Path, *, retention_hours: int = DEFAULT_RETENTION_HOURS, keep_version: int | None = None,
             compact: bool = True) -> MaintainResult:
    """Compact a table's small files into larger ones, then vacuum files no longer referenced by any version
    committed within `retention_hours`.

    The trade-off: vacuuming frees disk but ends time travel to versions older than the retention. A version that
    must stay readable (`keep_version`, e.g. the oldest version a prediction recorded) stretches the retention of
    this table to cover it, so every file that version references is kept, at the cost of keeping every file
    removed since.
    """
    dt = DeltaTable(str(path))
    files_before, active_before = _files_on_disk(path), len(dt.file_uris())
    if compact and active_before > 1:
        dt.optimize.compact()
        dt = DeltaTable(str(path))
    retention = retention_hours
    if keep_version is not None and keep_version <= dt.version():
        retention = max(retention, _hours_since_version(dt, keep_version))
    removed = dt.vacuum(retention_hours=retention, dry_run=False, enforce_retention_duration=False)
    return MaintainResult(path, files_before, _files_on_disk(path), active_before, len(dt.file_uris()),
                          compact and active_before > 1, len(removed), retention)


def recorded_versions(lake_root: Path) -> dict[Path, int]:
    """Gold or public table -> the oldest of its versions that must stay readable: any a prediction recorded
    (predictions' `feature_tables` JSON, which a trace reads) and the one the newest release names (which readers
    read; crimelake.release)."""

    from crimelake.release import latest_in  # release writes through this module

    newest = latest_in(lake_root)
    oldest: dict[Path, int] = {lake_root / name: v for name, v in newest.versions.items()} if newest else {}
    predictions = lake_root / "ml" / "predictions"
    if not table_exists(predictions):
        return oldest
    column = DeltaTable(str(predictions)).to_pyarrow_dataset().to_table(columns=["feature_tables"]).column(0)
    for text in pc.unique(column).to_pylist():
        for name, v in (json.loads(text) if text else {}).items():
            if v is not None:
                p = lake_root / "gold" / name
                oldest[p] = min(int(v), oldest.get(p, int(v)))
    return oldest


def maintain_lake(lake_root: Path, *, retention_hours: int = DEFAULT_RETENTION_HOURS,
                  layers: tuple[str, ...] = MAINTAINED_LAYERS, on_table=None) -> list[MaintainResult]:
    """Compact and vacuum every bronze, quarantine, gold and public table (see `maintain`), keeping every gold
    version a prediction recorded readable."""
    if retention_hours < 0:
        raise ValueError(f"retention_hours must be >= 0, got {retention_hours}")
    keep = recorded_versions(lake_root)
    out = []
    for path in tables_under(lake_root, layers):
        result = maintain(path, retention_hours=retention_hours, keep_version=keep.get(path))
        out.append(result)
        if on_table:
            on_table(result)
    return out
