"""Public outputs: aggregates only, small counts suppressed and every count rounded (crimelake.disclosure).

The public map and any open-data release read these tables, never gold or bronze. A table made from a monthly gold
table is partitioned by month: a run reads only the months of its partition range from gold and replaces only
those months of the public table, so the cost of a monthly run does not grow with the history already published.
A table made from a whole-table gold export (the area indicators) is one unpartitioned asset, rebuilt whole.
"""

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from crimelake import lake as delta
from crimelake.disclosure import forces_covering, protect, public_cells, suppress_pinned_totals, threshold
from crimelake.disclosure_check import audit_values, recoverable
from crimelake.forecasting import GROUPS
from orchestration.defs.automation import checked_eager
from orchestration.defs.transform.dbt_assets import WAREHOUSE_POOL
from orchestration.defs.transform.gold import GOLD_MARTS
from orchestration.lib.partitions import monthly_partitions, run_months
from orchestration.lib.resources import LakeResource

PUBLIC_GROUP = "public"
CHECK_DISCLOSURE = "disclosure_rules"
ROUNDING_BASE = 5
LISTED = 50  # offending rows named in the check's metadata
COUNT_COLUMNS = ["h3_cell", "force", "month", "forecast_group", "incident_count"]


def cell_month_counts(counts: pd.DataFrame, cells: pd.DataFrame | None = None) -> pd.DataFrame:
    counts = counts.assign(h3_cell_r7=public_cells(counts["h3_cell"]))
    grouped = counts.groupby(["h3_cell_r7", "force", "month", "forecast_group"], as_index=False,
                             observed=True)["incident_count"].sum()
    return protect(grouped.rename(columns={"h3_cell_r7": "h3_cell"}), ["incident_count"])


def cell_month_counts_all_forces(counts: pd.DataFrame, cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """One count per public cell whatever force recorded it: a cell on a force boundary, or one that holds a
    station policed by British Transport Police, is one total (rounded from the true sum), not one row per force.
    `forces` lists the forces whose area the cell covers: from the study area (`cells`, gold/dim_cells) where it
    is given, so it does not depend on which months a run reads."""
    counts = counts.assign(h3_cell_r7=public_cells(counts["h3_cell"]))
    counts = counts.assign(forces=forces_covering(counts, "h3_cell_r7", cells))
    grouped = counts.groupby(["h3_cell_r7", "forces", "month", "forecast_group"], as_index=False,
                             observed=True)["incident_count"].sum()
    totals = protect(grouped.rename(columns={"h3_cell_r7": "h3_cell"}), ["incident_count"])
    # Each total is the sum of the cell's per-force counts in public/cell_month_counts: withheld where the two
    # together would pin a suppressed count.
    return suppress_pinned_totals(totals, cell_month_counts(counts), ["h3_cell", "month", "forecast_group"],
                                  "incident_count", base=ROUNDING_BASE)


def force_month_totals(counts: pd.DataFrame, cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Totals per force, month and group. Gold counts hold only cells with incidents, so a force-month with rows
    in some group delivered data: a group with no rows there is a published 0, not a gap. A force-month with no
    rows at all is left out (unknown, never zero; gold/coverage says why)."""
    grouped = counts.groupby(["force", "month", "forecast_group"], as_index=False, observed=True)["incident_count"].sum()
    if not grouped.empty:
        delivered = grouped[["force", "month"]].drop_duplicates()
        grid = delivered.merge(pd.DataFrame({"forecast_group": list(GROUPS)}), how="cross")
        grouped = grid.merge(grouped, on=["force", "month", "forecast_group"], how="outer")
        grouped["incident_count"] = grouped["incident_count"].fillna(0).astype("int64")
    totals = protect(grouped.sort_values(["force", "month", "forecast_group"], ignore_index=True), ["incident_count"])
    # Each total is the sum of the force's cells in public/cell_month_counts: withheld where the two together
    # would pin a suppressed count.
    return suppress_pinned_totals(totals, cell_month_counts(counts), ["force", "month", "forecast_group"],
                                  "incident_count", base=ROUNDING_BASE)


def area_quarter_indicators(areas: pd.DataFrame, cells: pd.DataFrame | None = None) -> pd.DataFrame:
    return protect(areas, count_columns(areas))


KEYS = {"h3_cell", "force", "forces", "month", "forecast_group", "lsoa_code", "quarter", "local_authority_code"}


def count_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEYS and not c.endswith("_suppressed")]


@dataclass(frozen=True)
class PublicTable:
    source: str  # the gold table it is made from
    make: Callable[..., pd.DataFrame]
    period: str  # the column a run's months select and replace: `month`, or `quarter` for quarterly tables
    columns: tuple[str, ...] | None = None  # the gold columns it needs (None: all)
    uses_cells: bool = False  # whether it needs gold/dim_cells


PUBLIC_TABLES = {
    "cell_month_counts": PublicTable("fct_cell_month_counts", cell_month_counts, "month", tuple(COUNT_COLUMNS)),
    "cell_month_counts_all_forces": PublicTable("fct_cell_month_counts", cell_month_counts_all_forces, "month",
                                                tuple(COUNT_COLUMNS), uses_cells=True),
    "force_month_totals": PublicTable("fct_cell_month_counts", force_month_totals, "month", tuple(COUNT_COLUMNS)),
    "area_quarter_indicators": PublicTable("fct_area_quarter_indicators", area_quarter_indicators, "quarter"),
}

_PERIOD = {"month": re.compile(r"^\d{4}-(0[1-9]|1[0-2])$"), "quarter": re.compile(r"^\d{4}-Q[1-4]$")}


def quarter_of(month: str) -> str:
    return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"


def period_span(months: tuple[str, str], period: str) -> tuple[str, str]:
    """The first and last value of `period` that a range of months touches (YYYY-MM and YYYY-Qn both sort as
    strings)."""
    span = months if period == "month" else (quarter_of(months[0]), quarter_of(months[1]))
    for value in span:
        if not _PERIOD[period].match(value):
            raise ValueError(f"{period} {value!r} is not a valid {period}")
    return span


def read_span(path: Path, period: str, span: tuple[str, str] | None, columns=None) -> pd.DataFrame:
    """The rows of a Delta table whose `period` lies in `span` (every row when `span` is None), filtered in
    pyarrow so files of other months are skipped on their statistics, not read."""
    dataset = DeltaTable(str(path)).to_pyarrow_dataset()
    where = None if span is None else (pc.field(period) >= span[0]) & (pc.field(period) <= span[1])
    return dataset.to_table(columns=list(columns) if columns else None, filter=where).to_pandas()


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame with a fixed schema (keys strings, flags booleans, counts int64), so an empty month writes the
    same schema as a full one."""
    flags = {f"{c}_suppressed" for c in count_columns(frame)}
    schema = pa.schema([(c, pa.string() if c in KEYS else pa.bool_() if c in flags else pa.int64())
                        for c in frame.columns])
    return pa.Table.from_pandas(frame.astype({c: "object" for c in frame.columns if c in KEYS}), schema=schema,
                                preserve_index=False)


def laid_out_by(path: Path, period: str, schema: pa.Schema) -> bool:
    """Whether an existing table is partitioned by `period` with this schema: only then can a run replace some
    of its periods (a table written whole by an earlier layout, or with other columns, is rebuilt once)."""
    return delta.partitioning(path) == [period] and delta.same_schema(path, schema)


def replace_span(path: Path, table: pa.Table, period: str, span: tuple[str, str] | None) -> delta.WriteResult:
    """Replace the rows whose `period` lies in `span` with `table` in one commit, touching only those partitions;
    with no span, the whole table (schema and partitioning included)."""
    if span is None:
        return delta.replace_table(path, table, partition_by=[period])
    return delta.replace_months(path, table, span, partition_column=period)


def period_parts(source: Path, period: str, span: tuple[str, str] | None) -> list[tuple[str, str] | None]:
    """The ranges of `period`s a run makes one at a time (`crimelake.lake.write_chunk` periods each): `span`
    cut up, or with no span every period the source holds ([None] when it holds none)."""
    if span is None:
        if not delta.table_exists(source):
            return [None]
        table = DeltaTable(str(source))
        # A table partitioned by the period names its periods in its log: no data file is read for them.
        values = (pa.table(table.get_add_actions(flatten=True)).column(f"partition.{period}")
                  if table.metadata().partition_columns == [period]
                  else table.to_pyarrow_dataset().to_table(columns=[period]).column(period))
        low, high = pc.min_max(values).values()
        if not low.is_valid:
            return [None]
        span = (low.as_py(), high.as_py())
    return delta.period_chunks(span[0], span[1], delta.write_chunk(period))


def read_staged(staging: Path, version: int, period: str, sub: tuple[str, str] | None,
                schema: pa.Schema) -> pa.Table:
    """The rows of the staged table (as of `version`) whose `period` lies in `sub` (every row with no `sub`),
    cast to the `schema` they were written with."""
    dataset = DeltaTable(str(staging), version=version).to_pyarrow_dataset()
    where = None if sub is None else (pc.field(period) >= sub[0]) & (pc.field(period) <= sub[1])
    return dataset.to_table(filter=where).cast(schema)


def suppressed_values(table: pa.Table) -> int:
    """How many counts of a public table are suppressed (its `<count>_suppressed` flags set)."""
    counts = {c for c in table.column_names if c not in KEYS and not c.endswith("_suppressed")}
    flags = [c for c in table.column_names if c.endswith("_suppressed") and c[:-11] in counts]
    return sum(int(pc.sum(table.column(c).cast(pa.int64())).as_py() or 0) for c in flags)


def staging_path(settings, name: str) -> Path:
    """Where a public table is written and audited before it is published; no reader looks here."""
    return settings.lake / "staging" / "public" / name


# Public tables that are totals of another's rows: (total, parts, the keys a total is grouped by, the keys that
# tell its parts apart). Differencing a total and its parts must not recover a suppressed part.
MARGINS = (
    ("force_month_totals", "cell_month_counts", ["force", "month", "forecast_group"], ["h3_cell"]),
    ("cell_month_counts_all_forces", "cell_month_counts", ["h3_cell", "month", "forecast_group"], ["force"]),
)


def audit(name: str, stored: pd.DataFrame, settings, span: tuple[str, str] | None) -> list[dict]:
    """What in the rows of public/`name` as stored breaks the disclosure rules, the published counterparts it
    totals or is a part of included (read over the same periods)."""
    floor = threshold()
    found = audit_values(stored, count_columns(stored), [c for c in stored.columns if c in KEYS],
                         min_count=floor, base=ROUNDING_BASE)
    period = PUBLIC_TABLES[name].period
    for total, parts, by, part_keys in MARGINS:
        if name not in (total, parts):
            continue
        other = parts if name == total else total
        path = settings.lake / "public" / other
        if not delta.table_exists(path):
            continue
        counterpart = read_span(path, period, span)
        t, p = (stored, counterpart) if name == total else (counterpart, stored)
        if "forces" in t.columns and "force" in part_keys:
            t = t.drop(columns="forces")
        found += recoverable(t, p, by, part_keys, "incident_count", min_count=floor, base=ROUNDING_BASE)
    return found


def _brief(finding: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in finding.items())


def build_public_asset(name: str) -> dg.AssetsDefinition:
    spec = PUBLIC_TABLES[name]
    deps = [dg.AssetKey(["gold", spec.source])] + ([dg.AssetKey(["gold", "dim_cells"])] if spec.uses_cells else [])
    whole = GOLD_MARTS[spec.source] is None
    grain = (dict(automation_condition=checked_eager(whole_table=True)) if whole else
             dict(partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
                  automation_condition=checked_eager()))
    how = ("rebuilt whole on each run, as its gold table is" if whole else
           f"partitioned by month: a run reads and replaces only the {spec.period}s of its partition range")

    @dg.asset(
        key=["public", name],
        deps=deps,
        group_name=PUBLIC_GROUP,
        kinds={"deltalake"},
        **grain,
        pool=WAREHOUSE_POOL,
        # Nothing is published (and no materialization recorded) when the check fails.
        output_required=False,
        check_specs=[dg.AssetCheckSpec(
            CHECK_DISCLOSURE, asset=dg.AssetKey(["public", name]), blocking=True,
            description="Read back from the staged table before it is published, and audited by code independent "
                        "of the disclosure control: no record-level column, every count suppressed, zero or at "
                        "least the threshold and rounded, no suppressed value recoverable from a published total "
                        "minus its published parts.")],
        description=f"Public table `lake/public/{name}` from gold/{spec.source}, one row per {spec.period} and "
                    "key: aggregates only, counts below the disclosure threshold suppressed and every count rounded "
                    f"to the nearest 5. It is {how}, written first to `lake/staging/public/{name}` and published "
                    "only once the rows written there pass the disclosure audit.",
    )
    def _public(context: dg.AssetExecutionContext, lake: LakeResource):
        settings = lake.settings()
        target = settings.lake / "public" / name
        source = settings.gold(spec.source)
        # A table from a whole-table gold export has no partitions of its own; in a run over months it still
        # rewrites only the periods of those months (from the run's tags), else every period.
        months = run_months(context)
        span = None if months is None else period_span(months, spec.period)
        cells = None
        if spec.uses_cells and delta.table_exists(settings.gold("dim_cells")):
            cells = read_span(settings.gold("dim_cells"), spec.period, None, ["h3_cell", "force"])

        def make(sub: tuple[str, str] | None) -> pa.Table:
            return arrow_table(spec.make(read_span(source, spec.period, sub, spec.columns), cells=cells))

        # A long range is made, staged, audited and published a few periods at a time, so memory does not grow
        # with the months of the run; nothing is published until every part has passed the audit.
        parts = [span] if whole else period_parts(source, spec.period, span)
        first = make(parts[0])
        if span is not None and not laid_out_by(target, spec.period, first.schema):
            context.log.info(f"public/{name} is not partitioned by {spec.period} yet: rebuilt whole, once")
            span = None
            parts = [span] if whole else period_parts(source, spec.period, span)
            first = make(parts[0])
        staging = staging_path(settings, name)
        findings, checked, suppressed, staged = [], 0, 0, None
        for i, sub in enumerate(parts):
            table, first = (first if i == 0 else make(sub)), None  # the first part is not held past its turn
            staged = (delta.replace_table(staging, table, partition_by=[spec.period]) if i == 0
                      else delta.replace_months(staging, table, sub, partition_column=spec.period))
            # The audit reads what the staging table holds, not the table handed to the writer.
            stored = read_staged(staging, staged.version, spec.period, sub if len(parts) > 1 else None,
                                 table.schema)
            findings += audit(name, stored.to_pandas(), settings, sub)
            checked += stored.num_rows
            suppressed += suppressed_values(table)
        check_md = {"offending_rows": dg.MetadataValue.json(findings[:LISTED]), "offending": len(findings),
                    "rows_checked": checked, "threshold": threshold(),
                    "staged_table": dg.MetadataValue.path(str(staging)), "staged_version": staged.version}
        if findings:
            context.log.error(f"public/{name}: {len(findings)} values break the disclosure rules; lake/public "
                              f"keeps what it held. First: {findings[0]}")
            yield dg.AssetCheckResult(check_name=CHECK_DISCLOSURE, passed=False, metadata=check_md,
                                      description=f"{len(findings)} published values break the disclosure rules "
                                                  f"(first: {_brief(findings[0])}); not published")
            return
        rows = 0
        for i, sub in enumerate(parts):
            stored = read_staged(staging, staged.version, spec.period, sub if len(parts) > 1 else None,
                                 table.schema)
            written = (replace_span(target, stored, spec.period, None) if span is None and i == 0
                       else replace_span(target, stored, spec.period, sub))
            rows += written.rows
        shutil.rmtree(staging, ignore_errors=True)
        yield dg.MaterializeResult(
            metadata={"dagster/row_count": rows, "delta_version": written.version,
                      "replaced": "every " + spec.period if span is None else f"{span[0]} to {span[1]}",
                      "suppressed_values": suppressed},
            check_results=[dg.AssetCheckResult(check_name=CHECK_DISCLOSURE, passed=True, metadata=check_md)],
        )

    return _public


PUBLIC_ASSETS = [build_public_asset(n) for n in PUBLIC_TABLES]


@dg.definitions
def public_definitions() -> dg.Definitions:
    return dg.Definitions(assets=PUBLIC_ASSETS)
