"""The Delta writer: month ranges replaced from record batch streams, whole tables repartitioned, and maintenance
that compacts and vacuums without breaking time travel to versions predictions record."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from crimelake import lake


def months_table(months: list[str], value: int = 1) -> pa.Table:
    return pa.table({"month": pa.array(months, pa.string()), "n": pa.array([value] * len(months), pa.int64())})


def last_commit(path) -> list[dict]:
    log = sorted((path / "_delta_log").glob("*.json"))[-1]
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_replace_months_rewrites_only_the_range_from_a_stream(tmp_path):
    path = tmp_path / "t"
    lake.replace_months(path, months_table(["2024-01", "2024-02", "2024-03", "2024-04"]), ("2024-01", "2024-04"))
    stream = months_table(["2024-02", "2024-03", "2024-03"], 7).to_reader(max_chunksize=1)
    written = lake.replace_months(path, stream, ("2024-02", "2024-03"))
    assert written.rows == 3 and written.version == 1
    rows = sorted((r["month"], r["n"]) for r in lake.read(path).to_pylist())
    assert rows == [("2024-01", 1), ("2024-02", 7), ("2024-03", 7), ("2024-03", 7), ("2024-04", 1)]
    touched = {a[k]["path"].split("/")[0] for a in last_commit(path) for k in ("add", "remove") if k in a}
    assert touched == {"month=2024-02", "month=2024-03"}
    # An empty range replacement empties those months only.
    lake.replace_months(path, months_table([]), ("2024-04", "2024-04"))
    assert lake.read(path, month="2024-04").num_rows == 0 and lake.read(path, month="2024-01").num_rows == 1


def test_replace_months_refuses_rows_outside_the_range_and_commits_nothing(tmp_path):
    path = tmp_path / "t"
    lake.replace_months(path, months_table(["2024-01"]), ("2024-01", "2024-01"))
    with pytest.raises(ValueError, match="outside the months 2024-02..2024-02"):
        lake.replace_months(path, months_table(["2024-02", "2024-05"]), ("2024-02", "2024-02"))
    assert lake.version(path) == 0
    with pytest.raises(ValueError, match="YYYY-MM range"):
        lake.replace_months(path, months_table([]), ("2024-03", "2024-01"))


def test_replace_months_refuses_an_unpartitioned_table_which_replace_table_repartitions(tmp_path):
    path = tmp_path / "t"
    lake.replace_table(path, months_table(["2024-01", "2024-02"]))
    assert lake.partitioning(path) == []
    with pytest.raises(ValueError, match="replace it whole"):
        lake.replace_months(path, months_table(["2024-01"]), ("2024-01", "2024-01"))
    written = lake.replace_table(path, months_table(["2024-01", "2024-02"]).to_reader(), partition_by=["month"])
    assert written.rows == 2 and lake.partitioning(path) == ["month"]
    other = pa.table({"month": ["2024-01"], "n": ["text"]})
    with pytest.raises(ValueError, match="another schema"):
        lake.replace_months(path, other, ("2024-01", "2024-01"))


def many_small_versions(path, n: int = 4) -> None:
    for i in range(n):
        lake.append(path, months_table(["2024-01"], i))


def test_maintain_compacts_and_vacuums_but_keeps_a_recorded_version_readable(tmp_path):
    kept, bare = tmp_path / "kept", tmp_path / "bare"
    for p in (kept, bare):
        many_small_versions(p)
        lake.replace_table(p, months_table(["2024-02"], 9))  # tombstones every earlier file
    plain = lake.maintain(bare, retention_hours=0)
    assert plain.files_before == 5 and plain.files_after == 1 and plain.vacuumed == 4
    with pytest.raises(FileNotFoundError):
        DeltaTable(str(bare), version=1).to_pyarrow_table()

    guarded = lake.maintain(kept, retention_hours=0, keep_version=1)
    assert guarded.retention_hours >= 1 and guarded.files_after == guarded.files_before
    assert DeltaTable(str(kept), version=1).to_pyarrow_table().num_rows == 2


def test_maintain_lake_walks_every_layer_and_protects_versions_predictions_record(tmp_path):
    root = tmp_path / "lake"
    bronze, gold, public = root / "bronze" / "s" / "e", root / "gold" / "fct_x", root / "public" / "p"
    for p in (bronze, gold, public):
        many_small_versions(p)
    lake.replace_table(gold, months_table(["2024-02"], 9))
    lake.append(root / "ml" / "predictions", pa.table({"feature_tables": [json.dumps({"fct_x": 2})]}))
    results = {r.path: r for r in lake.maintain_lake(root, retention_hours=0)}
    assert set(results) == {bronze, gold, public}  # ml tables are not maintained here
    assert results[bronze].active_before == 4 and results[bronze].active_after == 1
    assert results[bronze].files_after == 1
    assert DeltaTable(str(gold), version=2).to_pyarrow_table().num_rows == 3
    assert lake.recorded_versions(root) == {gold: 2}
    with pytest.raises(ValueError):
        lake.maintain_lake(root, retention_hours=-1)


def test_period_ranges_cut_months_and_quarters_into_chunks():
    assert lake.period_range("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert lake.period_range("2023-Q4", "2024-Q2") == ["2023-Q4", "2024-Q1", "2024-Q2"]
    assert lake.period_chunks("2024-01", "2024-05", 2) == [("2024-01", "2024-02"), ("2024-03", "2024-04"),
                                                          ("2024-05", "2024-05")]
    assert lake.period_chunks("2024-Q1", "2024-Q4", 3) == [("2024-Q1", "2024-Q3"), ("2024-Q4", "2024-Q4")]
    with pytest.raises(ValueError, match="not a range"):
        lake.period_range("2024-01", "2024-Q2")


def test_a_long_range_is_written_a_few_months_per_commit_with_the_same_rows(tmp_path, monkeypatch):
    months = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    rows = months_table(months * 2, 3)

    def rows_between(first, last, nulls):
        if first is None:
            return rows
        return rows.filter((pa.compute.field("month") >= first) & (pa.compute.field("month") <= last))

    whole = tmp_path / "whole"
    written = lake.write_by_chunks(whole, rows_between, ("2024-01", "2024-05"), whole=True, size=2)
    assert written.rows == 10 and written.version == 2  # three commits: 2 + 2 + 1 months
    assert sorted(r["month"] for r in lake.read(whole).to_pylist()) == sorted(months * 2)
    assert lake.partitioning(whole) == ["month"]

    # A partial replacement touches only its span, chunk by chunk; the environment sets the chunk size.
    monkeypatch.setenv("CRIMELAKE_WRITE_CHUNK_MONTHS", "1")
    rows = months_table(["2024-02", "2024-03"], 9)
    written = lake.write_by_chunks(whole, rows_between, ("2024-02", "2024-03"))
    assert written.rows == 2 and written.version == 4
    assert sorted((r["month"], r["n"]) for r in lake.read(whole).to_pylist()) == [
        ("2024-01", 3), ("2024-01", 3), ("2024-02", 9), ("2024-03", 9), ("2024-04", 3), ("2024-04", 3),
        ("2024-05", 3), ("2024-05", 3)]
    with pytest.raises(ValueError, match="needs the span"):
        lake.write_by_chunks(whole, rows_between, None)


def test_a_warehouse_export_of_many_months_matches_one_written_at_once(tmp_path, monkeypatch):
    import duckdb

    from orchestration.lib.warehouse import export_mart

    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.sql("create schema marts")
    con.sql("create table marts.t as select strftime(date '2024-01-01' + to_months(i % 7), '%Y-%m') as month, "
            "i as n from range(700) r(i)")
    con.close()
    monkeypatch.setenv("CRIMELAKE_WRITE_CHUNK_MONTHS", "36")
    export_mart(warehouse, "marts.t", tmp_path / "once", partition_column="month")
    monkeypatch.setenv("CRIMELAKE_WRITE_CHUNK_MONTHS", "2")
    written, replaced = export_mart(warehouse, "marts.t", tmp_path / "chunked", partition_column="month")
    assert replaced == "whole table" and written.rows == 700
    assert DeltaTable(str(tmp_path / "once")).version() == 0 and written.version == 3  # 7 months, 2 a commit

    def rows(path):
        return sorted((r["month"], r["n"]) for r in lake.read(path).to_pylist())

    assert rows(tmp_path / "once") == rows(tmp_path / "chunked")
    written, replaced = export_mart(warehouse, "marts.t", tmp_path / "chunked", partition_column="month",
                                    months=("2024-02", "2024-05"))
    assert replaced == "2024-02..2024-05" and written.rows == 400 and written.version == 5
    assert rows(tmp_path / "once") == rows(tmp_path / "chunked")


def test_a_staged_month_is_unseen_until_committed_and_replaces_only_its_month(tmp_path):
    path = tmp_path / "t"
    lake.replace_month(path, months_table(["2024-01"] * 3, 1), "2024-01")
    lake.replace_month(path, months_table(["2024-02"] * 2, 1), "2024-02")
    rows = pa.table({"month": pa.array(["2024-01"] * 4), "n": pa.array([5, None, 7, 6], pa.int64())})
    staged = lake.stage_month(path, rows, "2024-01")
    assert staged.files[0].exists() and lake.read(path, month="2024-01").column("n").to_pylist() == [1, 1, 1]
    result = lake.commit_staged(staged)
    assert result.version == DeltaTable(str(path)).version() == 2 and result.rows == 4
    assert sorted(lake.read(path, month="2024-01").column("n").to_pylist(), key=str) == [5, 6, 7, None]
    assert lake.read(path, month="2024-02").num_rows == 2
    add = next(a["add"] for a in last_commit(path) if "add" in a)
    assert json.loads(add["stats"]) == {"numRecords": 4, "minValues": {"n": 5}, "maxValues": {"n": 7},
                                        "nullCount": {"n": 1}}
    assert add["partitionValues"] == {"month": "2024-01"}


def test_a_staged_month_takes_dictionary_text_and_a_discarded_one_leaves_nothing(tmp_path):
    path = tmp_path / "t"
    schema = pa.schema([("month", pa.string()), ("file", pa.string())])
    lake.replace_month(path, pa.table({"month": ["2024-01"], "file": ["a.csv"]}, schema=schema), "2024-01")
    rows = pa.table({"file": pa.array(["b.csv", "b.csv", "c.csv"]).dictionary_encode(), "month": ["2024-01"] * 3})
    lake.commit_staged(lake.stage_month(path, rows, "2024-01"))
    read = lake.read(path)
    assert read.schema.field("file").type == pa.string() and read.column("file").to_pylist() == ["b.csv", "b.csv", "c.csv"]
    before = sorted(path.rglob("*.parquet"))
    gone = lake.stage_month(path, rows, "2024-01")
    lake.discard_staged(gone)
    assert sorted(path.rglob("*.parquet")) == before and lake.read(path).num_rows == 3
    with pytest.raises(ValueError, match="cannot replace partition 2024-01"):
        lake.stage_month(path, pa.table({"file": ["x"], "month": ["2024-02"]}), "2024-01")


def test_a_month_of_many_chunks_reads_back_in_the_order_given(tmp_path):
    n = 20000
    rows = pa.table({"month": ["2024-03"] * n, "n": pa.array(range(n), pa.int64())})
    chunked = pa.concat_tables([rows.slice(a, 200) for a in range(0, n, 200)])
    for k in range(3):
        lake.replace_month(tmp_path / f"t{k}", chunked, "2024-03")
        assert lake.read(tmp_path / f"t{k}", month="2024-03").column("n").to_pylist() == list(range(n))


def test_a_staged_month_of_file_chunks_keeps_its_text_dictionary_encoded(tmp_path):
    """A month arrives as one chunk per file, each with its own dictionary for the per-file text (file name,
    hash): the staged Parquet file holds that text as a dictionary, not one spelled-out value per row."""
    path = tmp_path / "t"
    schema = pa.schema([("month", pa.string()), ("file", pa.string()), ("n", pa.int64())])
    lake.replace_month(path, pa.table({"month": ["2024-01"], "file": ["a.csv"], "n": [0]}, schema=schema), "2024-01")
    per_file = 5000
    chunks = [pa.table({"file": pa.array([f"{'x' * 60}-{k}.csv"] * per_file).dictionary_encode(),
                        "month": ["2024-01"] * per_file, "n": pa.array(range(k * per_file, (k + 1) * per_file))})
              for k in range(8)]
    staged = lake.stage_month(path, pa.concat_tables(chunks), "2024-01")
    column = pq.ParquetFile(staged.files[0]).metadata.row_group(0).column(0)
    assert column.path_in_schema == "file"
    # Spelled out, the 40,000 names would be over 2.5 MB before compression; as a dictionary, a few hundred bytes.
    assert column.total_uncompressed_size < 20_000
    lake.commit_staged(staged)
    read = lake.read(path, month="2024-01")
    assert read.column("n").to_pylist() == list(range(8 * per_file))
    assert read.column("file").to_pylist() == [f"{'x' * 60}-{k}.csv" for k in range(8) for _ in range(per_file)]
