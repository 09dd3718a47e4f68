"""Ingest one month of one source entity into its bronze, quarantine and rejected-files Delta tables.

Nothing is lost: every data line of every file read is either loaded into bronze or quarantined with its raw text,
file, line and reason, so `rows_read == rows_loaded + rows_quarantined`; every file not read (unreadable,
duplicate, superseded) is recorded in the rejected-files table. The month is replaced as a whole in each table,
so re-running it gives the same tables.
"""

from __future__ import annotations

import codecs
import functools
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crimelake import lake, memory
from crimelake.config import Settings
from crimelake.ingest import coerce
from crimelake.ingest.geojson import count_features, is_geojson
from crimelake.ingest.landing import Decision, landing_problems, owns_strays, plan
from crimelake.ingest.lines import Lines
from crimelake.ingest.quarantine import (
    LINEAGE,
    QUARANTINE,
    FileLineage,
    _raw_texts,
    constant,
    dictionary_text,
    quarantine_table,
    split_duplicates,
)
from crimelake.ingest.reader import FileRejected, parse_bytes, sha256_of
from crimelake.ingest.validate import check
from data_contracts.loader import Contract, default_contracts

REJECTED_FILES = pa.schema([
    ("month", pa.string()),
    ("source", pa.string()),
    ("entity", pa.string()),
    ("file", pa.string()),
    ("sha256", pa.string()),
    ("size_bytes", pa.int64()),
    ("status", pa.string()),
    ("reason", pa.string()),
    ("line", pa.int64()),
    ("_contract", pa.string()),
    ("_ingest_run_id", pa.string()),
    ("_ingested_at", pa.timestamp("us", tz="UTC")),
])


READERS = 2  # files read and checked at once
# The blocking checks a month must pass before it is committed to bronze.
ACCOUNTED = "rows_accounted_for"
CONTRACT = "contract_expectations"
HELD_BACK = "month held back: "  # the quarantine reason of a held month's rows, followed by the checks it failed


def count_lines(data: bytes, encoding: str) -> int:
    """Data lines of a delimited file (every line after the header): a count taken apart from the ingest parser,
    so the accounting of loaded and quarantined rows can be checked against it. Lines end at LF (a CR alone is
    text), as the parser reads them; a quoted field running over several lines counts each line, since each is
    quarantined on its own. That is the ``line_num`` Python's csv module reaches over the same text, counted
    without parsing (about 1 s a national month less); a test holds the two equal on awkward files. In an
    encoding where LF is the byte 0x0A and no other character's bytes hold it (UTF-8, the single-byte code pages),
    the bytes are counted as they are: decoding changes no line."""
    if _newline_is_one_byte(encoding):
        return max(0, _newlines(data) + (not data.endswith(b"\n")) - 1) if data else 0
    text = data.decode(encoding, errors="replace")
    if not text:
        return 0
    return max(0, text.count("\n") + (not text.endswith("\n")) - 1)


_BLOCK = 1 << 20


def _newlines(data: bytes) -> int:
    """LF bytes in `data`, counted by numpy a block at a time: eight times as fast as `bytes.count`, which also
    holds the GIL that the other file's reader needs, and with no mask the size of the file."""
    a = np.frombuffer(data, np.uint8)
    return sum(int(np.count_nonzero(a[i:i + _BLOCK] == 0x0A)) for i in range(0, len(a), _BLOCK))


@functools.cache
def _newline_is_one_byte(encoding: str) -> bool:
    name = codecs.lookup(encoding).name
    return name == "utf-8" or (name not in ("utf-16", "utf-32") and "\n".encode(encoding) == b"\n"
                               and all(len(chr(c).encode(encoding, errors="ignore")) <= 1 for c in range(256)))


# The rejected-files table of a source's landing folder itself (folders not named for a month, files outside every
# month folder) is kept beside its entities' tables under this name.
LANDING = "_landing"


def bronze_schema(contract: Contract) -> pa.Schema:
    """The bronze table's columns: the contract's typed columns, derived columns, the month and lineage."""
    fields = [pa.field(c.name, coerce.ARROW_TYPES[c.logical_type]) for c in contract.columns if c.name != "month"]
    if contract.knife_column:
        fields.append(pa.field("knife_enabled", pa.bool_()))
    if contract.suppression:
        fields.append(pa.field(f"{contract.suppression['column']}_suppressed", pa.bool_()))
    if contract.x and contract.y:
        fields += [pa.field("wgs84_lon", pa.float64()), pa.field("wgs84_lat", pa.float64()),
                   pa.field("h3_cell", pa.string())]
    groups = contract.filename_pattern.groupindex
    for supplier in ("force", "authority"):
        if supplier in groups:
            fields.append(pa.field(supplier, pa.string()))
    fields.append(pa.field("month", pa.string()))
    return pa.schema(fields + list(LINEAGE))


@dataclass
class FileReport:
    file: str
    sha256: str
    status: str
    reason: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_counted: int = 0  # data lines counted apart from the parser (count_lines)


@dataclass
class IngestResult:
    source: str
    entity: str
    month: str
    contract: str
    run_id: str
    files: list[FileReport] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    bronze_version: int | None = None
    quarantine_version: int | None = None
    rejected_version: int | None = None
    table: pa.Table | None = None  # the loaded rows as written to bronze (constant text dictionary-encoded)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    validation: Any = None  # what `validate` returned
    typed: pa.Table | None = None  # every parsed row typed, before the contract's rules set any aside
    rows_counted: int = 0
    rows_duplicate: int = 0  # quarantined as repeating a unique key already loaded (included in rows_quarantined)
    held_back: list[str] = field(default_factory=list)  # the blocking checks that kept the month out of bronze

    @property
    def counts_add_up(self) -> bool:
        """Every data line, as counted apart from the parser, is loaded or quarantined (file by file and in all)."""
        per_file = all(f.rows_counted == f.rows_loaded + f.rows_quarantined for f in self.files)
        return per_file and self.rows_counted == self.rows_loaded + self.rows_quarantined

    @property
    def rejected(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "rejected"]

    def summary(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)
             if f.name not in ("table", "files", "validation", "typed")}
        d["files"] = [asdict(f) for f in self.files]
        return d


def _reason_key(reason: str) -> str:
    """A short category for a reason, for counting: the column and the kind of failure, without the value."""
    head = reason.split(";")[0]
    for undecodable in ("NUL byte", "not valid"):
        if head.startswith(undecodable):
            return " ".join(head.split()[:3]) if undecodable == "not valid" else undecodable
    column, _, rest = head.partition(":")
    kind = rest.strip()
    for marker in ("is not a valid", "is not one of", "does not match", "is not mapped", "below the minimum",
                   "above the maximum", "lies outside", "belongs to", "required value missing", "duplicates",
                   "unsuppressed count", "is not the file's force", "names no police force"):
        if marker in kind:
            return f"{column}: {marker}"
    return head if len(head) < 60 else head[:60]


def _without_duplicates(typed: list[pa.Table], loaded: list[pa.Table], dups: pa.Table) -> pa.Table:
    """Every parsed row typed, less the rows set aside as repeating a key already loaded: a publisher's repeated
    rows are resolved here (kept once, the rest quarantined as duplicates), so the month's suite checks the rows
    as resolved, and its uniqueness expectation catches any repeat the resolution missed. Each file's typed rows
    start with its loaded rows, in the same order."""
    if not dups.num_rows:
        return pa.concat_tables(typed)
    repeated = set(zip(dups.column("_source_file").to_pylist(), dups.column("_source_line").to_pylist(), strict=True))
    parts = []
    for all_rows, kept in zip(typed, loaded, strict=True):
        k = kept.num_rows
        pairs = zip(kept.column("_source_file").to_pylist(), kept.column("_source_line").to_pylist(), strict=True)
        keep = np.fromiter(((f, ln) not in repeated for f, ln in pairs), dtype=bool, count=k)
        parts.append(all_rows.slice(0, k).filter(pa.array(keep)))
        parts.append(all_rows.slice(k))
    return pa.concat_tables(parts)


@memory.gc_paused()
def ingest_partition(
    settings: Settings,
    contract: Contract,
    month: str,
    *,
    run_id: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    write: bool = True,
    validate: Callable[[IngestResult], Any] | None = None,
) -> IngestResult:
    """Read, check and (with `write`) replace one month of one source entity.

    `validate`, given the result with every parsed row typed (`result.typed`, before the contract's rules set any
    aside) and its loaded rows, returns an object whose `passed` says whether the month meets its contract; it is
    kept as `result.validation`; a `validate.prepare`, if it has one, is given each file's typed rows as the file is
    read (on the reader's thread) and returns what `result.typed` is to hold of them. The month is committed to
    bronze only when it passes and its rows add up to the lines counted apart from the parser; otherwise every row
    meant for bronze is quarantined as "month held back: <checks>", bronze keeps what it held, and
    `result.held_back` names the checks."""
    run_id = run_id or uuid.uuid4().hex
    now = datetime.now(UTC)
    siblings = [c for c in default_contracts().values() if c.source == contract.source]
    if contract not in siblings:
        siblings.append(contract)
    decisions = plan(settings, contract, month, siblings)
    # What lies outside every month folder belongs to no month: it is reported with each load of the source, and
    # recorded in the source's landing rejected-files table, which holds what is wrong in the landing now.
    problems = landing_problems(settings, contract.source) if owns_strays(contract, siblings) else []
    result = IngestResult(contract.source, contract.entity, month, contract.ref, run_id)
    schema = bronze_schema(contract)
    # The rows as written: the per-file constant text columns stay dictionary-encoded up to the Delta writer.
    rows_schema = dictionary_text(schema, [*LINEAGE.names, "force", "authority"])
    loaded: list[pa.Table] = []
    typed: list[pa.Table] = []
    texts: dict[str, Lines] = {}
    q_parts: list[pa.Table] = []
    rejected_rows: list[dict] = []

    def reject(d: Decision, status: str, reason: str, line: int | None = None) -> None:
        rel = settings.relative(d.file.path)
        result.files.append(FileReport(rel, d.file.sha256, status, reason))
        rejected_rows.append(dict(month=month, source=contract.source, entity=contract.entity, file=rel,
                                  sha256=d.file.sha256, size_bytes=d.file.size, status=status, reason=reason,
                                  line=line, _contract=contract.ref, _ingest_run_id=run_id, _ingested_at=now))

    def typed_rows(parsed, checked) -> pa.Table:
        """Every parsed row of a file typed (a value that is not of its type is null), the rows the rules set
        aside included: the rows the contract's suite is run on."""
        kept = checked.table.select([c.name for c in contract.columns if c.name in checked.table.column_names])
        if not checked.failed:
            return kept
        at = pa.array(np.array(sorted(checked.failed), dtype=np.int64))
        failed = {}
        for name, field_ in zip(kept.column_names, kept.schema, strict=True):
            if name == "month" and name not in parsed.columns:
                failed[name] = pa.repeat(pa.scalar(month, field_.type), len(at))
                continue
            values, _ = coerce.convert(contract.column(name), coerce.text(parsed.columns[name].take(at)))
            failed[name] = values.cast(field_.type)
        return pa.concat_tables([kept, pa.table(failed, schema=kept.schema)])

    def load(d: Decision) -> FileRejected | tuple[FileReport, pa.Table, list[pa.Table], Lines, pa.Table]:
        """One file read, checked and given its lineage: its report, loaded rows, quarantine rows and text."""
        rel = settings.relative(d.file.path)
        data = d.file.path.read_bytes()
        # Each file is hashed once: here as it is read, unless the plan needed its hash to compare copies.
        d.file.sha256 = d.file.sha256 or sha256_of(data)
        try:
            parsed = parse_bytes(d.file.path, data, contract, sha256=d.file.sha256)
        except FileRejected as e:
            return e
        report = FileReport(rel, parsed.sha256, "loaded", rows_read=parsed.rows_read,
                            rows_counted=(count_features(data, contract.encoding) if is_geojson(d.file.path)
                                          else count_lines(data, contract.encoding)))
        lineage = FileLineage(rel, parsed.sha256, contract.ref, run_id, now)
        supplier = d.file.supplier
        q: list[pa.Table] = []
        if parsed.bad:
            q.append(quarantine_table(
                month, contract, supplier, [b.reason for b in parsed.bad], pa.array([b.raw for b in parsed.bad],
                                                                                    pa.string()),
                lineage.columns(np.array([b.line for b in parsed.bad], dtype=np.int64))))
        checked = check(parsed, contract, month, settings.h3_resolution, d.file.groups)
        if checked.failed:
            failed = np.array(sorted(checked.failed), dtype=np.int64)
            q.append(quarantine_table(
                month, contract, supplier, ["; ".join(checked.failed[i]) for i in failed.tolist()],
                parsed.raw_text(failed), lineage.columns(parsed.lines[failed])))
        t = checked.table
        k = t.num_rows
        extra = lineage.columns(parsed.lines[checked.kept], encoded=True)
        for g in ("force", "authority"):
            if g in contract.filename_pattern.groupindex:  # a column of that name is the row's own
                extra[g] = constant(d.file.groups.get(g), pa.string(), k, encoded=True)
        for name, arr in extra.items():
            t = t.append_column(name, arr)
        report.rows_quarantined = len(parsed.bad) + len(checked.failed)
        report.rows_loaded = k
        all_rows = typed_rows(parsed, checked)
        if prepare:
            all_rows = prepare(all_rows)
        return report, t.select(schema.names).cast(rows_schema), q, parsed.text, all_rows

    prepare = getattr(validate, "prepare", None)
    to_read = [d for d in decisions if d.status == "read"]
    # Two files at a time: hashing, numpy, Arrow's parser and its compute kernels work outside the GIL. The files'
    # results are taken in file order, so the month comes out as it would one file after another.
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        loads = pool.map(load, to_read)
        done = 0
        for d in decisions:
            if d.status != "read":
                reject(d, d.status, d.reason)
                continue
            out = next(loads)
            if isinstance(out, FileRejected):
                reject(d, "rejected", out.reason, out.line)
            else:
                report, rows, q, text, all_rows = out
                result.files.append(report)
                loaded.append(rows)
                typed.append(all_rows)
                q_parts.extend(q)
                texts[report.file] = text
            done += 1
            if progress:
                progress(done, len(to_read), d.file.name)

    landing_rows = []
    for problem in problems:
        rel = settings.relative(problem.path)
        result.files.append(FileReport(rel, "", "rejected", problem.reason))
        landing_rows.append(dict(month=None, source=contract.source, entity=contract.entity, file=rel, sha256="",
                                 size_bytes=0, status="rejected", reason=problem.reason, line=None,
                                 _contract=contract.ref, _ingest_run_id=run_id, _ingested_at=now))

    table = pa.concat_tables(loaded) if loaded else rows_schema.empty_table()
    table, dups = split_duplicates(table, contract, texts)
    if dups.num_rows:
        q_parts.append(dups)
        per_file = Counter(dups.column("_source_file").to_pylist())
        for f in result.files:
            moved = per_file.get(f.file, 0)
            f.rows_loaded -= moved
            f.rows_quarantined += moved
    result.table = table
    result.rows_duplicate = dups.num_rows
    result.typed = _without_duplicates(typed, loaded, dups) if typed else None
    result.rows_read = sum(f.rows_read for f in result.files)
    result.rows_counted = sum(f.rows_counted for f in result.files)
    result.rows_loaded = table.num_rows
    result.rows_quarantined = sum(q.num_rows for q in q_parts)
    # The month's checks run before anything is committed: what fails them never reaches bronze. Meanwhile the
    # month's bronze file is written but not committed (the suite is Python and pandas; the Parquet writer runs
    # outside the GIL), then committed if the month passes and deleted if it is held back.
    bronze = settings.bronze(contract.source, contract.entity)
    quarantine = settings.quarantine(contract.source, contract.entity)
    rejected = settings.rejected_files(contract.source, contract.entity)
    stage = bool(write and validate and table.num_rows and result.counts_add_up and lake.table_exists(bronze))
    # The month's quarantine and rejected-files rows are known before its checks run: their files are written
    # beside the checks too, so that only the three commits are left once the month is judged.
    qt = pa.concat_tables(q_parts) if q_parts else QUARANTINE.empty_table()
    rt = pa.Table.from_pylist(rejected_rows, schema=REJECTED_FILES) if rejected_rows else REJECTED_FILES.empty_table()
    side = [(bronze, table)] if stage else []
    if write and validate:
        side += [(path, rows) for path, rows in ((quarantine, qt), (rejected, rt)) if lake.table_exists(path)]
    with ThreadPoolExecutor(max_workers=max(1, len(side))) as pool:
        staging = {path: pool.submit(lake.stage_month, path, rows, month) for path, rows in side}
        try:
            result.validation = validate(result) if validate else None
        except BaseException:
            for f in staging.values():
                if f.exception() is None:
                    lake.discard_staged(f.result())
            raise
        staged = {path: f.result() for path, f in staging.items()}
    result.typed = None
    if not result.counts_add_up:
        result.held_back.append(ACCOUNTED)
    if result.validation is not None and not result.validation.passed:
        result.held_back.append(CONTRACT)
    if bronze in staged and result.held_back:
        lake.discard_staged(staged.pop(bronze))
    if result.held_back and table.num_rows:
        q_parts.append(held_back_rows(table, contract, texts, HELD_BACK + ", ".join(result.held_back)))
        for f in result.files:
            f.rows_quarantined += f.rows_loaded
            f.rows_loaded = 0
        table = result.table = table.slice(0, 0)
        result.rows_loaded = 0
        # The quarantine staged without the held rows is written again with them.
        qt = pa.concat_tables(q_parts)
        if quarantine in staged:
            lake.discard_staged(staged.pop(quarantine))
    result.rows_quarantined = qt.num_rows
    for reason in qt.column("reason").to_pylist():
        key = HELD_BACK.strip() if reason.startswith(HELD_BACK) else _reason_key(reason)
        result.quarantine_reasons[key] = result.quarantine_reasons.get(key, 0) + 1
    if not write:
        return result
    landing_path = settings.rejected_files(contract.source, LANDING)
    if landing_rows or (owns_strays(contract, siblings) and lake.table_exists(landing_path)):
        lake.replace_table(landing_path, pa.Table.from_pylist(landing_rows, schema=REJECTED_FILES))

    def commit(path: Path, rows: pa.Table) -> int:
        """The month's rows of one table committed: its staged file if there is one, else written now."""
        return (lake.commit_staged(staged[path]) if path in staged else lake.replace_month(path, rows, month)).version

    # Three tables, one commit each, side by side: Delta's writer encodes and writes outside the GIL.
    with ThreadPoolExecutor(max_workers=3) as pool:
        b = pool.submit(lake.version, bronze) if result.held_back else pool.submit(commit, bronze, table)
        q = pool.submit(commit, quarantine, qt)
        r = pool.submit(commit, rejected, rt)
        result.bronze_version, result.quarantine_version, result.rejected_version = b.result(), q.result(), r.result()
    return result


def held_back_rows(table: pa.Table, contract: Contract, texts: dict[str, Lines], reason: str) -> pa.Table:
    """The rows of a month held back from bronze as quarantine rows: their raw text and lineage, one reason."""
    supplier_col = next((g for g in ("force", "authority") if g in table.column_names), None)
    supplier = table.column(supplier_col).combine_chunks() if supplier_col else None
    raw = _raw_texts(table.column("_source_file").to_pylist(), table.column("_source_line").to_numpy(), texts)
    lineage = {name: table.column(name).combine_chunks() for name in LINEAGE.names}
    q = quarantine_table("", contract, supplier, [reason] * table.num_rows, raw, lineage)
    return q.set_column(0, "month", table.column("month").combine_chunks())


def ensure_bronze_tables(settings, contracts=None) -> list[str]:
    """Create an empty bronze table (the contract's schema, no rows) for every source that has not delivered
    yet, so the conformed layer can read every source from the first month on; returns the tables created."""
    from deltalake import write_deltalake

    created = []
    for c in (contracts or default_contracts()).values():
        path = settings.bronze(c.source, c.entity)
        if not lake.table_exists(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_deltalake(str(path), bronze_schema(c).empty_table(), mode="append", partition_by=["month"])
            created.append(f"{c.source}/{c.entity}")
    return created
