"""Ingest does each costly thing once, with the same result: the frame handed to the expectations is not
fingerprinted, each file is hashed once, and lines with quotes are read together as each would be read alone."""

from __future__ import annotations

from crimelake.ingest.engine import ingest_partition
from tests.factories import contract, csv_text, land, rms_ho_row

RMS = contract("force_rms_ho", "crimes")


def test_expectations_still_fail_on_the_loaded_rows_without_fingerprinting_them(settings, monkeypatch):
    from data_contracts.expectations import validate_frame

    rows = [rms_ho_row(f"BD/000000{i}/24") for i in range(6)]
    land(settings, RMS, "2024-03", "bedfordshire-rms-2024-03.csv", csv_text(RMS, rows))
    r = ingest_partition(settings, RMS, "2024-03", write=False)
    validate_frame(RMS, r.table, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)  # builds the context

    from great_expectations.execution_engine import pandas_execution_engine

    def refuse(df):
        raise AssertionError("the frame was fingerprinted")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    ok = validate_frame(RMS, r.table, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)
    assert ok.passed and ok.rows == 6
    repeated = r.table.set_column(r.table.schema.get_field_index("crime_ref"), "crime_ref", r.table.column("status"))
    bad = validate_frame(RMS, repeated, rows_read=r.rows_read, rows_quarantined=r.rows_quarantined)
    assert not bad.passed
    assert bad.failed(expectation="expect_column_values_to_be_unique", column="crime_ref")
    assert bad.failed(expectation="expect_column_values_to_match_regex", column="crime_ref")

