"""Expectation suites generated from the data contracts, and validation of bronze partitions against them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from data_contracts.expectations import QUARANTINE_SHARE, arrow_spelling, build_suite, validate_frame
from data_contracts.loader import Contract, ContractError, QualityRule, default_contracts

CONTRACTS = default_contracts()
IDS = [f"{s}/{e}" for s, e in CONTRACTS]
ROWS = 3

# One valid value per row for every pattern the contracts use; the test below keeps this table honest.
PATTERN_EXAMPLES = {
    r"^[A-Z]{2}/[0-9]{5,8}/[0-9]{2}$": lambda i: f"AB/{12345 + i}/24",
    r"^[0-9]{2}[A-Z]{2}[0-9]{6}$": lambda i: f"24AB{i:06d}",
    r"^[A-Z]{2,4}-[0-9]{6,8}$": lambda i: f"ASB-{i:06d}",
    r"^[0-9a-f]{64}$": lambda i: hashlib.sha256(str(i).encode()).hexdigest(),
    r"^\d{4}-\d{2}$": lambda i: "2024-01",
    r"^[EW]0[0-9]{7}$": lambda i: f"E0{1000000 + i:07d}",
    r"^[EW]0[6-9][0-9]{6}$": lambda i: "E06000023",
    r"^\d{4}-Q[1-4]$": lambda i: "2024-Q1",
    r"^[A-Z]{1,2}[0-9][0-9A-Z]?$": lambda i: "BS1",
}

SENSITIVE_REDACTED = "redacted: sensitive column"


def _number(col, i):
    lo, hi = col.minimum, col.maximum
    if lo is not None and hi is not None:
        return lo + (hi - lo) * (i + 1) / (ROWS + 1)
    if lo is not None:
        return lo + 1 + i
    if hi is not None:
        return hi - 1 - i
    return float(i)


def clean_frame(contract: Contract, rows: int = ROWS) -> pd.DataFrame:
    """A frame that meets the contract, typed the way the bronze loader types it, with lineage columns."""
    data = {}
    for col in contract.columns:
        t = col.logical_type
        if col.enum:
            values = [col.enum[i % len(col.enum)] for i in range(rows)]
            data[col.name] = pd.Series(values, dtype="string")
        elif t == "string":
            if col.pattern:
                values = [PATTERN_EXAMPLES[col.pattern](i) for i in range(rows)]
            else:
                values = [f"{col.name} {i}" for i in range(rows)]
            data[col.name] = pd.Series(values, dtype="string")
        elif t == "integer":
            data[col.name] = pd.Series([int(_number(col, i)) for i in range(rows)], dtype="Int64")
        elif t == "number":
            data[col.name] = pd.Series([float(_number(col, i)) for i in range(rows)], dtype="float64")
        elif t in ("date", "timestamp"):
            data[col.name] = pd.Series(pd.date_range("2024-01-01", periods=rows, freq="D"))
        elif t == "boolean":
            data[col.name] = pd.Series([True] * rows, dtype="boolean")
        else:  # pragma: no cover - the loader allows no other types
            raise AssertionError(t)
    data["_source_file"] = "extract.csv"
    data["_source_line"] = list(range(2, rows + 2))
    data["_contract"] = contract.ref
    data["force"] = "avon-and-somerset"
    data["h3_cell"] = "89195da49b7ffff"
    return pd.DataFrame(data)


def validate(contract, df, rows_read=None, rows_quarantined=0):
    return validate_frame(
        contract, df, rows_read=len(df) if rows_read is None else rows_read, rows_quarantined=rows_quarantined
    )


def failed_columns(report, expectation):
    return {r.column for r in report.results if r.expectation == expectation and not r.passed}


def result(report, expectation, column=None):
    hits = [r for r in report.results if r.expectation == expectation and r.column == column]
    assert len(hits) == 1, (expectation, column, hits)
    return hits[0]


def with_quality(contract, *rules):
    return dataclasses.replace(contract, quality=tuple(rules))


# -- suites -------------------------------------------------------------------------------------------------


def test_pattern_examples_match_their_patterns():
    used = {c.pattern for contract in CONTRACTS.values() for c in contract.columns if c.pattern}
    assert used <= set(PATTERN_EXAMPLES), f"add examples for {sorted(used - set(PATTERN_EXAMPLES))}"
    for pattern, make in PATTERN_EXAMPLES.items():
        for i in range(ROWS):
            assert re.search(pattern, make(i)), (pattern, make(i))


ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")


def test_suite_patterns_read_in_python_as_ingest_reads_them_in_arrow():
    used = {c.pattern for contract in CONTRACTS.values() for c in contract.columns if c.pattern}
    for pattern in used:
        good = [PATTERN_EXAMPLES[pattern](i) for i in range(ROWS)]
        # A final newline, and digits of another script: where Python's `$` and `\d` and RE2's part ways.
        values = good + [v + "\n" for v in good] + [v.translate(ARABIC_INDIC_DIGITS) for v in good]
        spelled = arrow_spelling(pattern)
        in_python = [re.search(spelled, v) is not None for v in values]
        in_arrow = pc.match_substring_regex(pa.array(values), pattern).to_pylist()
        assert in_python == in_arrow, (pattern, spelled)
        assert in_python[:ROWS] == [True] * ROWS


@pytest.mark.parametrize(("pattern", "spelled"), [
    (r"^\d{4}-\d{2}$", r"^[0-9]{4}-[0-9]{2}\Z"),
    (r"^\D+$", r"^[^0-9]+\Z"),
    (r"^[\d.]+$", r"^[0-9.]+\Z"),
    (r"^[$]+x$", r"^[$]+x\Z"),
    (r"^[]$]$", r"^[]$]\Z"),
    (r"^[^]$]a\$$", r"^[^]$]a\$\Z"),
    (r"^\w\s$", r"^\w\s\Z"),
])
def test_arrow_spelling_rewrites_only_end_anchors_and_digits_outside_escapes(pattern, spelled):
    assert arrow_spelling(pattern) == spelled
    for value in ("1", "12", "x", "$x", "]", "$", "a$", "a_ ", "b$", "1\n"):
        in_arrow = pc.match_substring_regex(pa.array([value]), pattern)[0].as_py()
        assert (re.search(spelled, value) is not None) == in_arrow, value


@pytest.mark.parametrize("key", CONTRACTS, ids=IDS)
def test_suite_covers_every_column_rule(key):
    contract = CONTRACTS[key]
    suite = build_suite(contract)
    by_type: dict[str, set] = {}
    for e in suite.expectations:
        cfg = e.configuration
        by_type.setdefault(cfg.type, set()).add(cfg.kwargs.get("column"))
        assert cfg.meta["rule"], f"{cfg.type} has no human-readable rule"

    names = {c.name for c in contract.columns}
    assert by_type["expect_column_to_exist"] == names
    assert by_type["expect_column_values_to_not_be_null"] == {c.name for c in contract.columns if c.required}
    assert by_type.get("expect_column_values_to_be_in_set", set()) == {
        c.name for c in contract.columns if c.enum
    }
    assert by_type.get("expect_column_values_to_match_regex", set()) == {
        c.name for c in contract.columns if c.pattern
    }
    assert by_type.get("expect_column_values_to_be_between", set()) == {
        c.name for c in contract.columns if c.minimum is not None or c.maximum is not None
    }
    assert {c.name for c in contract.columns if c.unique} <= by_type.get(
        "expect_column_values_to_be_unique", set()
    )
    table = [e for e in suite.expectations if e.configuration.type == "expect_table_columns_to_match_set"]
    assert len(table) == 1 and set(table[0].configuration.kwargs["column_set"]) == names
    assert table[0].configuration.kwargs["exact_match"] is False

    metrics = {q.metric for q in contract.quality}
    has_row_count = "expect_table_row_count_to_be_between" in by_type
    assert has_row_count == ("rowCount" in metrics)
    share = [r for r in suite.meta["crimelake_rules"] if r["expectation"] == QUARANTINE_SHARE]
    assert len(share) == sum(1 for q in contract.quality if q.metric == "invalidValues")


def test_row_count_rule_becomes_min_value_n_plus_one():
    contract = CONTRACTS[("police_uk", "street")]
    rule = QualityRule(
        metric="rowCount", description="more than ten rows", severity="error", must_be_greater_than=10
    )
    suite = build_suite(with_quality(contract, rule))
    [e] = [e for e in suite.expectations if e.configuration.type == "expect_table_row_count_to_be_between"]
    assert e.configuration.kwargs["min_value"] == 11
    assert e.configuration.kwargs.get("max_value") is None


def test_unique_column_and_duplicate_rule_become_one_expectation():
    contract = CONTRACTS[("force_rms_ho", "crimes")]
    assert contract.column("crime_ref").unique
    assert any(q.metric == "duplicateValues" for q in contract.quality)
    suite = build_suite(contract)
    uniq = [
        e
        for e in suite.expectations
        if e.configuration.type == "expect_column_values_to_be_unique"
        and e.configuration.kwargs["column"] == "crime_ref"
    ]
    assert len(uniq) == 1
    assert "Crime references are unique within a month" in uniq[0].configuration.meta["rule"]


def test_unknown_metric_raises_naming_file_and_metric():
    contract = CONTRACTS[("police_uk", "street")]
    bad = with_quality(contract, QualityRule(metric="freshness", description="", severity="error", must_be=1))
    with pytest.raises(ContractError) as err:
        build_suite(bad)
    assert str(contract.path) in str(err.value) and "freshness" in str(err.value)


@pytest.mark.parametrize(
    "rule",
    [
        QualityRule(metric="invalidValues", description="", severity="error", arguments={"scope": "column"}),
        QualityRule(
            metric="invalidValues", description="", severity="error", arguments={"scope": "quarantineShare"}
        ),
        QualityRule(metric="duplicateValues", description="", severity="error", must_be=0),
        QualityRule(
            metric="duplicateValues", description="", severity="error", arguments={"properties": ["nope"]}
        ),
        QualityRule(metric="rowCount", description="", severity="error"),
    ],
    ids=["other-scope", "no-threshold", "no-properties", "unknown-property", "row-count-no-bound"],
)
def test_unusable_quality_rules_raise(rule):
    contract = CONTRACTS[("police_uk", "street")]
    with pytest.raises(ContractError, match=re.escape(str(contract.path))):
        build_suite(with_quality(contract, rule))


# -- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", CONTRACTS, ids=IDS)
def test_clean_frame_passes(key):
    contract = CONTRACTS[key]
    report = validate(contract, clean_frame(contract))
    assert report.passed, report.summary()
    assert all(r.passed for r in report.results)
    assert not any(r.column and r.column.startswith("_") for r in report.results)
    assert report.rows == ROWS
    meta = report.to_metadata()
    assert json.loads(json.dumps(meta))["passed"] is True
    assert meta["rules_failed"] == 0 and meta["rules_evaluated"] == len(report.results)
    assert report.summary().count("\n") == 0


@pytest.mark.parametrize("key", CONTRACTS, ids=IDS)
def test_null_in_required_column_fails_naming_it(key):
    contract = CONTRACTS[key]
    df = clean_frame(contract)
    required = {c.name for c in contract.columns if c.required}
    optional = {c.name for c in contract.columns if not c.required}
    for name in required | optional:
        df.loc[0, name] = pd.NA
    report = validate(contract, df)
    assert not report.passed
    assert failed_columns(report, "expect_column_values_to_not_be_null") == required
    assert (
        result(report, "expect_column_values_to_not_be_null", sorted(required)[0]).observed[
            "unexpected_count"
        ]
        == 1
    )
    # Nulls in optional columns break nothing else: enum, pattern and range checks skip them.
    assert {r.column for r in report.failures} == required


@pytest.mark.parametrize(
    "key", [k for k, c in CONTRACTS.items() if any(col.enum for col in c.columns)], ids=str
)
def test_value_outside_enum_fails_naming_column(key):
    contract = CONTRACTS[key]
    df = clean_frame(contract)
    enums = {c.name for c in contract.columns if c.enum}
    for name in enums:
        df.loc[1, name] = "not-a-listed-value"
    report = validate(contract, df)
    assert not report.passed
    assert failed_columns(report, "expect_column_values_to_be_in_set") == enums
    for name in enums:
        observed = result(report, "expect_column_values_to_be_in_set", name).observed
        assert observed["unexpected_count"] == 1
        assert observed["unexpected_values"] == ["not-a-listed-value"]


def test_null_in_optional_enum_column_is_allowed():
    contract = CONTRACTS[("force_rms_ho", "crimes")]
    assert not contract.column("status").required and contract.column("status").enum
    df = clean_frame(contract)
    df.loc[:, "status"] = pd.NA
    report = validate(contract, df)
    assert report.passed, report.summary()


@pytest.mark.parametrize(
    "key", [k for k, c in CONTRACTS.items() if any(col.pattern for col in c.columns)], ids=str
)
def test_bad_pattern_fails_naming_column(key):
    contract = CONTRACTS[key]
    df = clean_frame(contract)
    patterned = {c.name: c for c in contract.columns if c.pattern}
    for name in patterned:
        df.loc[2, name] = "!bad value!"
    report = validate(contract, df)
    assert not report.passed
    assert failed_columns(report, "expect_column_values_to_match_regex") == set(patterned)
    for name, col in patterned.items():
        observed = result(report, "expect_column_values_to_match_regex", name).observed
        assert observed["unexpected_count"] == 1
        if col.classification == "sensitive":
            assert observed["unexpected_values"] == SENSITIVE_REDACTED
        else:
            assert observed["unexpected_values"] == ["!bad value!"]


def test_a_value_with_a_final_newline_fails_its_pattern_as_it_does_at_ingest():
    contract = CONTRACTS[("police_uk", "street")]
    df = clean_frame(contract)
    df.loc[1, "month"] = "2024-01\n"
    report = validate(contract, df)
    assert failed_columns(report, "expect_column_values_to_match_regex") == {"month"}
    assert result(report, "expect_column_values_to_match_regex", "month").observed["unexpected_count"] == 1


def test_sensitive_values_never_reach_the_report():
    contract = CONTRACTS[("force_rms_ho", "crimes")]
    assert contract.column("crime_ref").classification == "sensitive"
    df = clean_frame(contract)
    df.loc[0, "crime_ref"] = "SECRET-REF-1"
    report = validate(contract, df)
    assert failed_columns(report, "expect_column_values_to_match_regex") == {"crime_ref"}
    assert "SECRET-REF-1" not in json.dumps(report.to_metadata())
    assert "SECRET-REF-1" not in report.summary()


@pytest.mark.parametrize(
    "key",
    [
        k
        for k, c in CONTRACTS.items()
        if any(col.minimum is not None or col.maximum is not None for col in c.columns)
    ],
    ids=str,
)
def test_out_of_range_number_fails_naming_column(key):
    contract = CONTRACTS[key]
    df = clean_frame(contract)
    bounded = [c for c in contract.columns if c.minimum is not None or c.maximum is not None]
    for col in bounded:
        outside = col.maximum + 1 if col.maximum is not None else col.minimum - 1
        df.loc[0, col.name] = outside
    report = validate(contract, df)
    assert not report.passed
    assert failed_columns(report, "expect_column_values_to_be_between") == {c.name for c in bounded}
    for col in bounded:
        assert (
            result(report, "expect_column_values_to_be_between", col.name).observed["unexpected_count"] == 1
        )


def test_range_is_inclusive_at_the_bounds():
    contract = CONTRACTS[("force_rms_ho", "crimes")]
    df = clean_frame(contract)
    df.loc[0, "easting"] = 0
    df.loc[1, "easting"] = 700000
    assert validate(contract, df).passed


@pytest.mark.parametrize(
    "key", [k for k, c in CONTRACTS.items() if any(col.unique for col in c.columns)], ids=str
)
def test_duplicated_unique_key_fails_naming_column(key):
    contract = CONTRACTS[key]
    df = clean_frame(contract)
    [key_col] = [c.name for c in contract.columns if c.unique]
    df.loc[1, key_col] = df.loc[0, key_col]
    report = validate(contract, df)
    assert not report.passed
    assert failed_columns(report, "expect_column_values_to_be_unique") == {key_col}
    assert result(report, "expect_column_values_to_be_unique", key_col).observed["unexpected_count"] == 2


def test_unique_column_is_checked_without_a_duplicate_rule():
    contract = with_quality(CONTRACTS[("la_reports", "reports")])
    assert contract.column("case_reference").unique
    df = clean_frame(contract)
    df.loc[2, "case_reference"] = df.loc[0, "case_reference"]
    report = validate(contract, df)
    [fail] = report.failures
    assert (fail.expectation, fail.column) == ("expect_column_values_to_be_unique", "case_reference")
    assert fail.rule == "case_reference is unique"


def test_compound_duplicate_rule_checks_columns_together():
    contract = CONTRACTS[("social_care", "indicators")]
    rule = QualityRule(
        metric="duplicateValues",
        description="One row per LSOA, quarter and indicator",
        severity="error",
        arguments={"properties": ["lsoa_code", "quarter", "indicator"]},
        must_be=0,
    )
    contract = with_quality(contract, rule)
    df = clean_frame(contract)
    # Row 1 repeats row 0's indicator but for another LSOA: allowed. Then an exact key repeat: not allowed.
    df.loc[1, "indicator"] = df.loc[0, "indicator"]
    assert validate(contract, df).passed
    df.loc[1, "lsoa_code"] = df.loc[0, "lsoa_code"]
    report = validate(contract, df)
    assert not report.passed
    [fail] = report.failures
    assert fail.expectation == "expect_compound_columns_to_be_unique"
    assert fail.rule == "One row per LSOA, quarter and indicator"
    assert fail.observed["unexpected_count"] == 2


@pytest.mark.parametrize(
    ("rows_read", "rows_quarantined", "passes"),
    [(100, 4, True), (100, 5, False), (100, 60, False), (0, 0, True), (1000, 49, True)],
)
def test_quarantine_share_rule(rows_read, rows_quarantined, passes):
    contract = CONTRACTS[("police_uk", "outcomes")]
    report = validate(contract, clean_frame(contract), rows_read=rows_read, rows_quarantined=rows_quarantined)
    share = result(report, QUARANTINE_SHARE)
    assert share.passed is passes
    assert report.passed is passes
    assert share.observed["rows_read"] == rows_read and share.observed["rows_quarantined"] == rows_quarantined
    assert share.observed["must_be_less_than"] == 0.05
    if not passes:
        assert report.failures == [share]
        assert "quarantined" in report.summary()


def test_empty_frame_fails_only_the_row_count_rule():
    contract = CONTRACTS[("police_uk", "street")]
    assert any(q.metric == "rowCount" for q in contract.quality)
    report = validate(contract, clean_frame(contract).iloc[0:0], rows_read=0)
    assert not report.passed
    assert [r.expectation for r in report.failures] == ["expect_table_row_count_to_be_between"]
    assert report.failures[0].observed["observed_value"] == 0
    assert report.rows == 0


def test_empty_frame_passes_when_contract_demands_no_rows():
    contract = CONTRACTS[("social_care", "indicators")]
    assert not any(q.metric == "rowCount" for q in contract.quality)
    report = validate(contract, clean_frame(contract).iloc[0:0], rows_read=0)
    assert report.passed, report.summary()


def test_warning_severity_is_reported_but_does_not_fail():
    contract = CONTRACTS[("police_uk", "street")]
    rule = QualityRule(
        metric="rowCount", description="usually rows", severity="warning", must_be_greater_than=0
    )
    report = validate(with_quality(contract, rule), clean_frame(contract).iloc[0:0], rows_read=0)
    assert report.passed
    [fail] = report.failures
    assert fail.expectation == "expect_table_row_count_to_be_between" and not fail.blocking
    assert "not blocking" in report.summary()


def test_missing_column_fails_without_raising():
    contract = CONTRACTS[("police_uk", "street")]
    report = validate(contract, clean_frame(contract).drop(columns=["crime_type", "location"]))
    assert not report.passed
    assert failed_columns(report, "expect_column_to_exist") == {"crime_type", "location"}
    columns = result(report, "expect_table_columns_to_match_set")
    assert sorted(columns.observed["missing_columns"]) == ["crime_type", "location"]
    not_null = result(report, "expect_column_values_to_not_be_null", "crime_type")
    assert not not_null.passed and "crime_type" in not_null.observed["error"]


def test_summary_has_one_line_per_failure_and_metadata_is_json():
    contract = CONTRACTS[("force_rms_ho", "crimes")]
    df = clean_frame(contract)
    df.loc[0, "knife_flag"] = "maybe"
    df.loc[1, "easting"] = -5
    report = validate(contract, df, rows_read=10, rows_quarantined=7)
    assert {(r.expectation, r.column) for r in report.failures} == {
        ("expect_column_values_to_be_in_set", "knife_flag"),
        ("expect_column_values_to_be_between", "easting"),
        (QUARANTINE_SHARE, None),
    }
    lines = report.summary().splitlines()
    assert len(lines) == 3
    assert any("knife_flag" in line and "maybe" in line for line in lines)
    meta = json.loads(json.dumps(report.to_metadata()))
    assert meta["passed"] is False and meta["rules_failed"] == 3
    assert {f["column"] for f in meta["failures"]} == {"knife_flag", "easting", None}
    assert meta["contract"] == contract.ref


def test_repeated_validation_in_one_process_is_independent():
    contract = CONTRACTS[("police_uk", "street")]
    bad = clean_frame(contract)
    bad.loc[0, "month"] = "January"
    assert not validate(contract, bad).passed
    assert validate(contract, clean_frame(contract)).passed
    assert not validate(contract, bad).passed


def test_a_column_is_judged_on_its_own_rows_when_other_columns_have_nulls():
    """Each column metric is computed on its column alone (the engine is not handed the rest of the frame); the
    counts and shares must be those of that column, nulls elsewhere in the row making no difference."""
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine

    contract = CONTRACTS[("police_uk", "street")]
    column = next(c for c in contract.columns if c.pattern and not c.required)
    others = [c.name for c in contract.columns if not c.required and c.name != column.name]
    df = clean_frame(contract, rows=8)
    df.loc[[1, 3], column.name] = "!bad value!"
    df.loc[4, column.name] = pd.NA
    df.loc[[1, 2, 5], others] = pd.NA
    report = validate_frame(contract, pa.Table.from_pandas(df, preserve_index=False), rows_read=len(df),
                            rows_quarantined=0)
    assert getattr(PandasExecutionEngine.get_compute_domain, "narrowed", False)
    observed = result(report, "expect_column_values_to_match_regex", column.name).observed
    assert observed["unexpected_count"] == 2
    assert observed["unexpected_percent"] == pytest.approx(round(200 / (len(df) - 1), 4))
    assert observed["unexpected_values"] == ["!bad value!"]
    assert failed_columns(report, "expect_column_values_to_match_regex") == {column.name}


@pytest.mark.parametrize("key", CONTRACTS, ids=IDS)
def test_a_month_prepared_file_by_file_is_judged_as_the_month_whole(key):
    """Each file's rows made ready for the suite apart (`frame_part`, text dictionary-encoded per file) give the
    same results as the month's rows handed over whole, whether the month passes or not."""
    import pyarrow as pa

    from data_contracts.expectations import frame_part

    contract = CONTRACTS[key]
    df = clean_frame(contract, rows=40)
    enum = next((c for c in contract.columns if c.enum and c.logical_type == "string"), None)
    text = next((c for c in contract.columns if c.logical_type == "string" and not c.pattern and not c.enum), None)
    for bad in (False, True):
        frame = df.copy()
        if bad and enum is not None:
            frame.loc[0:29, enum.name] = "not in the set"  # three rows in four: more than any contract tolerates
        if bad and text is not None:
            frame[text.name] = [f"distinct {i}" for i in range(len(frame))]  # mostly distinct: back to text
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # Typed as ingest types text (Arrow's string, where pandas gives large_string).
        table = table.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
                                      for f in table.schema]))
        parts = [frame_part(contract, table.slice(a, 13)) for a in range(0, table.num_rows, 13)]
        assert any(pa.types.is_dictionary(f.type) for f in parts[0].schema) == bool(
            [c for c in contract.columns if c.logical_type == "string" and not c.pattern])
        whole = validate_frame(contract, table, rows_read=40, rows_quarantined=0, before_filtering=True)
        split = validate_frame(contract, pa.concat_tables(parts), rows_read=40, rows_quarantined=0,
                               before_filtering=True)
        assert [(r.expectation, r.column, r.passed, r.observed) for r in split.results] == [
            (r.expectation, r.column, r.passed, r.observed) for r in whole.results]
        assert split.passed == whole.passed
        if bad and enum is not None:
            assert result(split, "expect_column_values_to_be_in_set", enum.name).observed["unexpected_count"] == 30
