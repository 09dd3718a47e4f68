"""Great Expectations suites generated from the data contracts, and validation of a loaded bronze partition.

The contract is the one source of truth: every expectation here is derived from a contract's columns and its
ODCS quality rules, never written by hand. Each expectation carries its human-readable rule in `meta`, so a
validation result explains itself without a second lookup table.

great-expectations costs ~5 s to import, so it is imported inside the functions that need it.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.loader import Column, Contract, ContractError, QualityRule

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

# The quarantine-share rule is not a table expectation (the quarantined rows are not in the frame), so it is
# reported under this name beside the GX results.
QUARANTINE_SHARE = "quarantine_share_to_be_less_than"

SUPPORTED_METRICS = ("rowCount", "duplicateValues", "invalidValues")

# Rules whose failure is reported but does not fail the partition.
NON_BLOCKING_SEVERITIES = {"info", "warning", "warn"}

MAX_VALUES = 5
MAX_TEXT = 120

_DATASOURCE = "crimelake_bronze"
_BATCH_DEFINITION = "whole_partition"

_lock = threading.RLock()
_context: Any = None
_suites: dict[str, Any] = {}
# The one-column frames made for the suite being run (see `_narrow_column_domains`).
_column_frames: dict[tuple[int, str], tuple[Any, Any]] = {}


@dataclass(frozen=True)
class RuleResult:
    expectation: str
    column: str | None
    passed: bool
    observed: dict[str, Any]
    rule: str
    severity: str = "error"

    @property
    def blocking(self) -> bool:
        return self.severity.lower() not in NON_BLOCKING_SEVERITIES


@dataclass
class SuiteReport:
    passed: bool
    results: list[RuleResult]
    contract: str = ""
    rows: int = 0
    rows_read: int = 0
    rows_quarantined: int = 0
    failures: list[RuleResult] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.failures = [r for r in self.results if not r.passed]

    def failed(self, expectation: str | None = None, column: str | None = None) -> list[RuleResult]:
        """Failed results, optionally narrowed to one expectation type and/or column."""
        return [
            r
            for r in self.failures
            if (expectation is None or r.expectation == expectation)
            and (column is None or r.column == column)
        ]

    def summary(self) -> str:
        if not self.failures:
            return f"{self.contract}: all {len(self.results)} rules passed on {self.rows} rows"
        lines = []
        for r in self.failures:
            where = f" [{r.column}]" if r.column else ""
            level = "" if r.blocking else f" ({r.severity}, not blocking)"
            lines.append(f"FAILED {r.expectation}{where}: {r.rule}{level}; observed {_brief(r.observed)}")
        return "\n".join(lines)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "passed": self.passed,
            "rows": self.rows,
            "rows_read": self.rows_read,
            "rows_quarantined": self.rows_quarantined,
            "rules_evaluated": len(self.results),
            "rules_failed": len(self.failures),
            "failures": [asdict(r) for r in self.failures],
            "results": [asdict(r) for r in self.results],
        }


def _brief(observed: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in observed.items())


def _import_gx():
    # Telemetry off before the first import: nothing may phone home or write to the user's home folder.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _coerce_enum(contract: Contract, col: Column) -> list[Any]:
    values = list(col.enum or ())
    try:
        if col.logical_type == "integer":
            return [int(v) for v in values]
        if col.logical_type == "number":
            return [float(v) for v in values]
        if col.logical_type == "boolean":
            truth = {"true": True, "false": False}
            return [truth[v.lower()] for v in values]
    except (ValueError, KeyError) as e:
        raise ContractError(
            f"{contract.path}: enum of {col.logical_type} column {col.name!r} holds a value that is not one: {e}"
        ) from e
    return values


# Expectations that hold row by row, and so take GX's `mostly` (the share of rows that must meet them).
_ROW_LEVEL = {"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeInSet", "ExpectColumnValuesToMatchRegex",
              "ExpectColumnValuesToBeBetween", "ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"}


_ESCAPE = re.compile(r"\\.")
# An escape, a whole character class (a `]` first in it is a member), or `$`: read left to right, so a `$` or `\\d`
# inside a class or escaped is never taken for one outside.
_PATTERN_TOKEN = re.compile(r"\\.|\[\^?\]?(?:\\.|[^\]\\])*\]|\$")


def arrow_spelling(pattern: str) -> str:
    """`pattern` as ingest's rules read it (RE2, through Arrow's `match_substring_regex`), spelled so that Python's
    `re` reads it the same way: `$` becomes `\\Z` (the end of the value: Python's `$` also matches before a final
    newline, RE2's does not) and `\\d` becomes `[0-9]` (Python's `\\d` also matches other scripts' digits).

    pandas runs a pattern through Arrow unless it may mean something else in Python; for `$` and `\\d` it decides
    by scanning the whole column (for a newline, for a non-ASCII character) on every match, which on a month's
    64-character crime ids cost as much as the match itself. Spelled this way the suite matches what ingest
    matched, whichever engine pandas picks, and pandas has nothing to scan for. Escapes other than `\\d` and
    `\\D`, and everything inside a character class but `\\d`, are left as written."""
    def spell(m: re.Match[str]) -> str:
        token = m.group()
        if token.startswith("["):  # a whole character class: only `\\d` has a spelling inside one
            return _ESCAPE.sub(lambda e: "0-9" if e.group() == "\\d" else e.group(), token)
        return {"$": "\\Z", "\\d": "[0-9]", "\\D": "[^0-9]"}.get(token, token)

    return _PATTERN_TOKEN.sub(spell, pattern)


def tolerated_share(contract: Contract) -> float:
    """The share of a month's rows its contract lets ingest set aside (its quarantineShare rule; 0 without one)."""
    limits = [float(q.must_be_less_than) for q in contract.quality
              if q.metric == "invalidValues" and q.arguments.get("scope") == "quarantineShare"
              and q.must_be_less_than is not None]
    return min(limits, default=0.0)


def build_suite(contract: Contract, *, before_filtering: bool = False) -> gx.ExpectationSuite:
    """The expectation suite a bronze partition of this contract must meet.

    Rules that are not table expectations (the quarantine share) travel in `suite.meta["crimelake_rules"]`, so
    the suite alone says everything `validate_frame` checks.

    `before_filtering`: the suite for every row of a month as parsed and typed, before ingest sets any aside.
    Each row-level rule must then hold for all but the share of rows the contract lets ingest quarantine
    (`mostly`), and labels must be ones the contract maps: ingest's own filtering is tested, not trusted.
    """
    gx = _import_gx()
    import great_expectations.expectations as gxe

    ref = contract.ref
    added: dict[tuple, Any] = {}
    mostly = round(1.0 - tolerated_share(contract), 6)

    def add(exp_cls: type, rule: str, origin: str, severity: str = "error", **kwargs: Any) -> None:
        key = (exp_cls.__name__, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        if key in added:
            # The same check stated twice (a unique column and a duplicateValues rule on it) runs once,
            # keeping both statements and the stricter severity.
            meta = added[key].meta
            meta["rule"] = f"{meta['rule']}; {rule}"
            meta["origin"] = f"{meta['origin']}, {origin}"
            if meta["severity"].lower() in NON_BLOCKING_SEVERITIES:
                meta["severity"] = severity
            return
        if before_filtering and exp_cls.__name__ in _ROW_LEVEL:
            kwargs["mostly"] = mostly
            rule = f"{rule} (on at least {mostly:.0%} of rows)" if mostly < 1 else rule
        exp = exp_cls(**kwargs, meta={"rule": rule, "origin": origin, "severity": severity, "contract": ref})
        added[key] = exp

    names = [c.name for c in contract.columns]
    add(
        gxe.ExpectTableColumnsToMatchSet,
        f"the partition has every {contract.name} column",
        "columns",
        column_set=names,
        exact_match=False,
    )
    for col in contract.columns:
        origin = f"column:{col.name}"
        add(gxe.ExpectColumnToExist, f"{col.name} is present", origin, column=col.name)
        if col.required:
            add(gxe.ExpectColumnValuesToNotBeNull, f"{col.name} is never null", origin, column=col.name)
        if col.enum:
            shown = ", ".join(col.enum)
            add(
                gxe.ExpectColumnValuesToBeInSet,
                f"{col.name} is one of {shown}" + ("" if col.required else " (or null)"),
                origin,
                column=col.name,
                value_set=_coerce_enum(contract, col),
            )
        if col.pattern is not None:
            if col.logical_type != "string":
                raise ContractError(
                    f"{contract.path}: column {col.name!r} has a pattern but is {col.logical_type}; "
                    "patterns apply to string columns only"
                )
            add(
                gxe.ExpectColumnValuesToMatchRegex,
                f"{col.name} matches {col.pattern}",
                origin,
                column=col.name,
                regex=arrow_spelling(col.pattern),
            )
        if col.minimum is not None or col.maximum is not None:
            if col.logical_type not in ("number", "integer"):
                raise ContractError(
                    f"{contract.path}: column {col.name!r} has minimum/maximum but is {col.logical_type}; "
                    "bounds apply to number and integer columns only"
                )
            if col.minimum is None:
                bounds = f"at most {col.maximum}"
            elif col.maximum is None:
                bounds = f"at least {col.minimum}"
            else:
                bounds = f"between {col.minimum} and {col.maximum}"
            add(
                gxe.ExpectColumnValuesToBeBetween,
                f"{col.name} is {bounds}",
                origin,
                column=col.name,
                min_value=col.minimum,
                max_value=col.maximum,
            )
        if col.unique:
            add(gxe.ExpectColumnValuesToBeUnique, f"{col.name} is unique", origin, column=col.name)

    if before_filtering and contract.label_column and contract.labels:
        add(gxe.ExpectColumnValuesToBeInSet, f"{contract.label_column} is a label contract {ref} maps",
            f"labels:{contract.label_column}", column=contract.label_column, value_set=sorted(contract.labels))
    extra: list[dict[str, Any]] = []
    for q in contract.quality:
        _quality_rule(contract, q, gxe, add, names, extra)
    # Built in one go rather than with add_expectation, which needs (and would write to) a current GX project.
    return gx.ExpectationSuite(
        name=f"{contract.name}@{contract.version}",
        expectations=list(added.values()),
        meta={"contract": ref, "crimelake_rules": extra},
    )


def _quality_rule(
    contract: Contract, q: QualityRule, gxe: Any, add: Any, names: list[str], extra: list
) -> None:
    where = f"{contract.path}: quality rule {q.metric!r}"
    origin = f"quality:{q.metric}"
    text = q.description or q.metric
    if q.metric == "rowCount":
        lo = hi = None
        if q.must_be is not None:
            lo = hi = int(q.must_be)
        if q.must_be_greater_than is not None:
            lo = math.floor(float(q.must_be_greater_than)) + 1
        if q.must_be_less_than is not None:
            hi = math.ceil(float(q.must_be_less_than)) - 1
        if lo is None and hi is None:
            raise ContractError(f"{where} needs mustBe, mustBeGreaterThan or mustBeLessThan")
        add(gxe.ExpectTableRowCountToBeBetween, text, origin, q.severity, min_value=lo, max_value=hi)
    elif q.metric == "duplicateValues":
        props = list(q.arguments.get("properties") or [])
        if not props:
            raise ContractError(
                f"{where} needs arguments.properties (the columns that must be unique together)"
            )
        unknown = [p for p in props if p not in names]
        if unknown:
            raise ContractError(f"{where} names columns {unknown} the schema does not define")
        if (
            q.must_be not in (None, 0)
            or q.must_be_greater_than is not None
            or q.must_be_less_than is not None
        ):
            raise ContractError(f"{where}: only 'mustBe: 0' (no duplicates) is supported")
        if len(props) == 1:
            add(gxe.ExpectColumnValuesToBeUnique, text, origin, q.severity, column=props[0])
        else:
            add(gxe.ExpectCompoundColumnsToBeUnique, text, origin, q.severity, column_list=props)
    elif q.metric == "invalidValues":
        scope = q.arguments.get("scope")
        if scope != "quarantineShare":
            raise ContractError(f"{where} has arguments.scope {scope!r}; only 'quarantineShare' is supported")
        if q.must_be_less_than is None:
            raise ContractError(f"{where} (quarantineShare) needs mustBeLessThan")
        extra.append(
            {
                "expectation": QUARANTINE_SHARE,
                "must_be_less_than": float(q.must_be_less_than),
                "rule": text,
                "severity": q.severity,
            }
        )
    else:
        raise ContractError(f"{where} is not supported; supported metrics are {', '.join(SUPPORTED_METRICS)}")


def _get_context() -> Any:
    global _context
    if _context is None:
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every frame below this size (an MD5 over a hash of every row) only to store it as a
        # batch marker, which no result here reads; on a month of street rows that hashing cost as much as every
        # expectation together. A threshold of 0 is GX's own "too large to fingerprint" path.
        pandas_execution_engine.HASH_THRESHOLD = 0
        _narrow_column_domains(pandas_execution_engine.PandasExecutionEngine)
        ctx = gx.get_context(mode="ephemeral")
        # tqdm bars would flood Dagster's captured logs once per partition.
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.data_sources.add_pandas(_DATASOURCE)
        _context = ctx
    return _context


def _narrow_column_domains(engine: type) -> None:
    """A column's metrics computed on that column alone. GX hands each column metric the whole frame, and its map
    conditions then drop the column's null rows from every column of it (`df[df[column].notnull()]`), once per
    expectation: on a month of street rows, a tenth of a second of copying columns no metric reads. Results are
    unchanged (a column-domain metric reads its column only; this project asks GX for no unexpected-row listings
    or index columns, which would read others).

    GX asks for a column's domain once per metric it computes (a month's suite, a few hundred times): each column's
    frame is made once per frame GX reads (`Series.to_frame`, a quarter of the cost of `df[[column]]`) and kept
    until the suite has run (`_column_frames`, emptied by `_run_suite`)."""
    from great_expectations.core.metric_domain_types import MetricDomainTypes

    original = engine.get_compute_domain
    if getattr(original, "narrowed", False):
        return

    def get_compute_domain(self, domain_kwargs, domain_type, accessor_keys=None):
        data, compute, accessor = original(self, domain_kwargs, domain_type, accessor_keys)
        column = accessor.get("column")
        if (MetricDomainTypes(domain_type) == MetricDomainTypes.COLUMN and data.shape[1] > 1
                and column in data.columns):
            made = _column_frames.get((id(data), column))
            if made is None or made[0] is not data:  # the frame itself is kept, so its id is not reused
                made = _column_frames[(id(data), column)] = (data, data[column].to_frame())
            data = made[1]
        return data, compute, accessor

    get_compute_domain.narrowed = True
    engine.get_compute_domain = get_compute_domain


def _batch_definition(contract: Contract) -> Any:
    ds = _get_context().data_sources.get(_DATASOURCE)
    asset_name = contract.ref
    try:
        asset = ds.get_asset(asset_name)
    except LookupError:
        asset = ds.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(_BATCH_DEFINITION)
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION)


def _cached_suite(contract: Contract, before_filtering: bool = False) -> Any:
    # Keyed by the whole parsed contract, not its file: a contract changed in memory (or a file edited and
    # re-read) must not be checked against a stale suite.
    key = (repr(contract), before_filtering)
    suite = _suites.get(key)
    if suite is None:
        suite = _suites[key] = build_suite(contract, before_filtering=before_filtering)
    return suite


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v[:MAX_TEXT] if isinstance(v, str) else v
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if hasattr(v, "item"):  # numpy scalars
        return _json_value(v.item())
    if isinstance(v, _dt.date | _dt.datetime):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return str(v)[:MAX_TEXT]


def _observed(res: Any, sensitive: set[str]) -> dict[str, Any]:
    cfg = res.expectation_config
    exc = res.exception_info or {}
    if exc.get("raised_exception"):
        return {"error": str(exc.get("exception_message") or "expectation raised")[:300]}
    # A missing column surfaces here as a dict of per-metric exceptions instead of the flat form above.
    for info in exc.values() if isinstance(exc, dict) else ():
        if isinstance(info, dict) and info.get("raised_exception"):
            return {"error": str(info.get("exception_message") or "expectation raised")[:300]}
    r = res.result or {}
    out: dict[str, Any] = {}
    if cfg.type == "expect_column_to_exist":
        out["column_present"] = bool(res.success)
    if "observed_value" in r and cfg.type != "expect_table_columns_to_match_set":
        out["observed_value"] = _json_value(r["observed_value"])
    mismatched = (r.get("details") or {}).get("mismatched") or {}
    if mismatched.get("missing"):
        out["missing_columns"] = _json_value(list(mismatched["missing"]))
    if "unexpected_count" in r:
        out["unexpected_count"] = int(r["unexpected_count"] or 0)
        if r.get("unexpected_percent") is not None:
            out["unexpected_percent"] = round(float(r["unexpected_percent"]), 4)
        # The unexpected values of a not-null check are all null: nothing worth showing.
        if out["unexpected_count"] and cfg.type != "expect_column_values_to_not_be_null":
            column = cfg.kwargs.get("column")
            columns = [column] if column else list(cfg.kwargs.get("column_list") or [])
            if sensitive.intersection(columns):
                out["unexpected_values"] = "redacted: sensitive column"
            else:
                values: list[Any] = []
                for v in r.get("partial_unexpected_list") or []:
                    jv = _json_value(v)
                    if jv not in values:
                        values.append(jv)
                    if len(values) >= MAX_VALUES:
                        break
                out["unexpected_values"] = values
    return out


def _quarantine_result(rule: dict[str, Any], rows_read: int, rows_quarantined: int) -> RuleResult:
    limit = rule["must_be_less_than"]
    share = rows_quarantined / rows_read if rows_read else 0.0
    return RuleResult(
        expectation=QUARANTINE_SHARE,
        column=None,
        # Nothing read means nothing to judge; the row-count rule speaks for empty deliveries.
        passed=rows_read == 0 or share < limit,
        observed={
            "rows_read": int(rows_read),
            "rows_quarantined": int(rows_quarantined),
            "share": round(share, 6),
            "must_be_less_than": limit,
        },
        rule=rule["rule"],
        severity=rule["severity"],
    )


_SAMPLE_ROWS = 4096


def _categorical(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column with few distinct values goes over as a categorical, which GX hashes, filters and matches
    once per distinct value; a mostly distinct one (an id) stays plain text, where a categorical would not help.
    Which kind a column is shows in its first rows, so an id column is never encoded only to be thrown away.
    A column whose parts were encoded apart (`frame_part`) has their dictionaries unified, unless the month's
    values turn out mostly distinct, when it goes back to text."""
    if pa.types.is_dictionary(col.type):
        if not len(col):
            return col.cast(col.type.value_type)
        one = col.unify_dictionaries().combine_chunks()
        return pa.chunked_array([one] if len(one.dictionary) * 2 <= len(one) else [one.cast(col.type.value_type)])
    if not pa.types.is_string(col.type) or len(col) == 0:
        return col
    head = col.slice(0, _SAMPLE_ROWS)
    if pc.count_distinct(head, mode="all").as_py() * 2 > len(head):
        return col
    # One chunk, so the categorical has one dictionary rather than one per file to unify.
    encoded = pc.dictionary_encode(col.combine_chunks())
    return pa.chunked_array([encoded]) if len(encoded.dictionary) * 2 <= len(col) else col


def _one_chunk(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column in one chunk: pandas keeps an Arrow text column's chunks, and GX's every filter and match would
    then pay for each of them (a month's rows, checked file by file, arrive in hundreds of chunks)."""
    return col if col.num_chunks <= 1 else pa.chunked_array([col.combine_chunks()], type=col.type)


def frame_part(contract: Contract, table: pa.Table) -> pa.Table:
    """One file's rows made ready for the suite of their month, where the files are read side by side: the
    contract's columns, each in one chunk, the text columns without a pattern dictionary-encoded (the month's frame
    unifies their dictionaries, see `_categorical`, rather than encoding a month of text after the last file)."""
    patterned = {c.name for c in contract.columns if c.pattern is not None}
    names = [c.name for c in contract.columns if c.name in table.column_names]
    columns = []
    for name in names:
        col = table.column(name)
        one = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
        if name not in patterned and pa.types.is_string(one.type):
            one = pc.dictionary_encode(one)
        columns.append(one)
    return pa.table(columns, names=names)


def _contract_columns(contract: Contract, data: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """The frame narrowed to the contract's columns: every expectation reads only those, and GX fingerprints
    and filters the whole frame it is given, so the columns it would ignore would still cost their time."""
    names = [c.name for c in contract.columns]
    if isinstance(data, pa.Table):
        table = data.select([n for n in names if n in data.column_names])
        # GX matches a pattern on the column as text: a categorical would only be expanded back.
        patterned = {c.name for c in contract.columns if c.pattern is not None}
        return pa.table([_one_chunk(col if name in patterned else _categorical(col))
                         for name, col in zip(table.column_names, table.columns, strict=True)],
                        names=table.column_names).to_pandas()
    present = [n for n in names if n in data.columns]
    return data if len(present) == len(data.columns) else data[present]


def _run_suite(contract: Contract, suite: Any, df: pd.DataFrame, result_format: str) -> Any:
    from great_expectations.validator.v1_validator import Validator

    # What Batch.validate runs, minus the batch it would load first and load again (GX fingerprints the whole
    # frame each time a batch is loaded).
    validator = Validator(
        _batch_definition(contract),
        result_format={"result_format": result_format, "partial_unexpected_count": 20},
        batch_parameters={"dataframe": df},
    )
    try:
        return validator.validate_expectation_suite(suite)
    finally:
        _column_frames.clear()
        # The engine keeps every loaded frame in its batch cache; drop it so partitions do not pile up.
        engine = _get_context().data_sources.get(_DATASOURCE).get_execution_engine()
        engine.batch_manager.reset_batch_cache()
        engine.batch_manager.batch_data_cache.clear()


def validate_frame(
    contract: Contract, df: pd.DataFrame | pa.Table, *, rows_read: int, rows_quarantined: int,
    before_filtering: bool = False,
) -> SuiteReport:
    """Validate one loaded bronze partition (a pandas frame or an Arrow table) against the suite built from its
    contract.

    `rows_read` and `rows_quarantined` are the counts of the load that produced `df` (quarantined rows are
    not in it); they feed the quarantine-share rule. Columns outside the contract (lineage `_...`, derived
    geography) are ignored: they are not handed to GX at all. `before_filtering`: `df` is every row of the month
    as parsed and typed, the rows ingest set aside included (see `build_suite`).
    """
    if rows_read < 0 or rows_quarantined < 0:
        raise ValueError("rows_read and rows_quarantined must not be negative")
    df = _contract_columns(contract, df)
    sensitive = {c.name for c in contract.columns if (c.classification or "").lower() == "sensitive"}
    with _lock:
        suite = _cached_suite(contract, before_filtering)
        # A month that meets its suite needs no more than pass or fail from each rule, which GX reaches without
        # listing the values that broke it; a suite that fails is run again for the counts and sample values
        # its report shows (on a national month of street rows, 1.2 to 1.4 s rather than 1.4 to 1.6 s).
        res = _run_suite(contract, suite, df, "BOOLEAN_ONLY")
        if not all(r.success for r in res.results):
            res = _run_suite(contract, suite, df, "BASIC")

    results: list[RuleResult] = []
    for r in res.results:
        cfg = r.expectation_config
        meta = cfg.meta or {}
        column = cfg.kwargs.get("column")
        results.append(
            RuleResult(
                expectation=cfg.type,
                column=column,
                passed=bool(r.success),
                observed=_observed(r, sensitive),
                rule=meta.get("rule", cfg.type),
                severity=meta.get("severity", "error"),
            )
        )
    # GX returns results in its own order (failed metric resolutions first); sort for a stable report.
    results.sort(key=lambda x: (x.column is not None, x.column or "", x.expectation))
    for rule in suite.meta.get("crimelake_rules", []):
        if rule["expectation"] == QUARANTINE_SHARE:
            results.append(_quarantine_result(rule, rows_read, rows_quarantined))

    return SuiteReport(
        passed=all(r.passed or not r.blocking for r in results),
        results=results,
        contract=contract.ref,
        rows=len(df),
        rows_read=int(rows_read),
        rows_quarantined=int(rows_quarantined),
    )
