"""Blocking checks stop what they guard: a public table is audited where it was staged before it is published,
a month that fails its ingest checks is neither committed to bronze nor transformed, and downstream automation
waits for upstream blocking checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelake.disclosure import protect
from crimelake.disclosure_check import audit_values, recoverable, rounding_range


# ----- the audit of published rows, independent of protect() -------------------------------------------------------
def test_the_audit_finds_small_unrounded_and_published_suppressed_counts():
    frame = pd.DataFrame({"force": list("abcde"), "n": [5.0, 12.0, None, 10.0, 0.0],
                          "n_suppressed": [False, False, True, True, False]})
    found = audit_values(frame, ["n"], ["force"], min_count=7, base=5)
    assert {(f["force"], f["rule"]) for f in found} == {
        ("a", "published count below the threshold 7"), ("b", "count not a multiple of 5"),
        ("d", "suppressed value published")}
    assert audit_values(frame.assign(incident_id="x"), ["n"], [], min_count=1, base=1)[0]["rule"] == \
        "record-level column incident_id is published"


def test_rounding_ranges_are_the_counts_that_round_to_a_value():
    assert rounding_range(10, 5) == (8, 12) and rounding_range(0, 5) == (0, 2)


def test_a_suppressed_part_pinned_by_its_total_is_found():
    # Total published unrounded (9) with one part 5: the hidden part can only be 4.
    totals = pd.DataFrame({"force": ["a"], "n": [9.0]})
    parts = pd.DataFrame({"force": ["a", "a"], "cell": ["x", "y"], "n": [5.0, None]})
    [found] = recoverable(totals, parts, ["force"], ["cell"], "n", min_count=5, base=1)
    assert found["cell"] == "y" and "recoverable as 4" in found["rule"]
    # Rounded to 5, the same figures leave several values open.
    assert recoverable(totals.assign(n=10.0), parts, ["force"], ["cell"], "n", min_count=5, base=5) == []


def test_protect_output_passes_the_audit_at_the_default_threshold():
    rng = np.random.default_rng(1)
    raw = pd.DataFrame({"force": np.repeat(list("abcdefgh"), 6), "cell": list("uvwxyz") * 8,
                        "n": rng.integers(0, 30, 48)})
    parts = protect(raw, ["n"], min_count=5)
    totals = protect(raw.groupby("force", as_index=False)["n"].sum(), ["n"], min_count=5)
    assert audit_values(parts, ["n"], ["force", "cell"], min_count=5, base=5) == []
    assert recoverable(totals, parts, ["force"], ["cell"], "n", min_count=5, base=5) == []


# ----- public tables: staged, audited, then published ---------------------------------------------------------------
def _write_gold(settings, months: list[str]) -> None:
    import h3
    import pyarrow as pa

    from crimelake import lake

    rng = np.random.default_rng(7)
    parents = [h3.latlng_to_cell(52.0 + i * 0.1, -0.3, 7) for i in range(4)]
    cells = [c for p in parents for c in sorted(h3.cell_to_children(p, 9))[:3]]
    rows = [(c, "bedfordshire", m, g, int(rng.integers(1, 9)))
            for m in months for c in cells for g in ("all_crime", "asb")]
    counts = pd.DataFrame(rows, columns=["h3_cell", "force", "month", "forecast_group", "incident_count"])
    lake.replace_table(settings.gold("fct_cell_month_counts"), pa.Table.from_pandas(counts, preserve_index=False))
    lake.replace_table(settings.gold("dim_cells"),
                       pa.Table.from_pandas(pd.DataFrame({"h3_cell": cells, "force": "bedfordshire"})))
    areas = pd.DataFrame({"lsoa_code": ["E01000001", "E01000002"], "quarter": "2024-Q1",
                          "local_authority_code": "E06000055", "incidents_all_crime": [7, 40]})
    lake.replace_table(settings.gold("fct_area_quarter_indicators"), pa.Table.from_pandas(areas))


def _publish(settings, first: str, last: str):
    import dagster as dg

    from orchestration.defs.serve.public import PUBLIC_ASSETS
    from orchestration.lib.resources import LakeResource

    return dg.materialize(PUBLIC_ASSETS, resources={"lake": LakeResource(home=str(settings.home))},
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                          tags={"dagster/asset_partition_range_start": first,
                                "dagster/asset_partition_range_end": last})


def test_a_public_table_failing_its_audit_is_not_published_and_names_the_offending_rows(settings, monkeypatch):
    from crimelake import lake

    months = ["2024-01", "2024-02"]
    _write_gold(settings, months)
    first = _publish(settings, *months)
    assert first.success and all(c.passed for c in first.get_asset_check_evaluations())
    public = settings.lake / "public"
    before = {p.name: (lake.version(p), lake.read(p).to_pandas()) for p in public.iterdir()}
    assert len(before) == 4 and not (settings.lake / "staging" / "public" / "cell_month_counts").exists()

    # A threshold of 7 with a faulty protect() that still suppresses below 5 only: counts of 5 to 7 come out as 5,
    # which the audit (its own code) must refuse before anything is published.
    import orchestration.defs.serve.public as public_assets
    from crimelake.disclosure import protect

    monkeypatch.setattr(public_assets, "protect", lambda frame, cols, **kw: protect(frame, cols, min_count=5))
    monkeypatch.setenv("CRIMELAKE_DISCLOSURE_THRESHOLD", "7")
    second = _publish(settings, *months)
    assert not second.success
    failed = [c for c in second.get_asset_check_evaluations() if not c.passed]
    assert failed, "some public table publishes a count of 5 under a threshold of 7"
    for check in failed:
        name = check.asset_key.path[-1]
        rows = check.metadata["offending_rows"].value
        assert rows and all(r["published"] in (5, None) for r in rows), rows
        assert any(r["rule"] == "published count below the threshold 7" for r in rows)
        # lake/public keeps its previous content; the staged table holds what was refused.
        path = public / name
        assert lake.version(path) == before[name][0]
        pd.testing.assert_frame_equal(lake.read(path).to_pandas(), before[name][1])
        staged = lake.read(settings.lake / "staging" / "public" / name).to_pandas()
        assert (staged["incident_count" if "incident_count" in staged else "incidents_all_crime"] == 5).any()
    published = {e.asset_key.path[-1] for e in second.get_asset_materialization_events()}
    assert published.isdisjoint(c.asset_key.path[-1] for c in failed)


# ----- ingest: a month failing a blocking check goes no further -----------------------------------------------------
def _months(path, column: str = "month") -> set[str]:
    from crimelake import lake

    return set(lake.read(path, columns=[column]).column(0).to_pylist()) if lake.table_exists(path) else set()


def _land_two_months(settings, unknown: int = 12) -> None:
    """2024-02 clean; 2024-03 with `unknown` of its 20 rows in a crime category the contract does not know."""
    from tests.factories import contract, csv_text, land, street_rows

    street = contract("police_uk", "street")
    land(settings, street, "2024-02", "2024-02-bedfordshire-street.csv",
         csv_text(street, street_rows(20, Month="2024-02")))
    rows = street_rows(20)
    for r in rows[:unknown]:
        r["Crime type"] = "Something else entirely"
    land(settings, street, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(street, rows))


@pytest.mark.integration
def test_a_month_failing_its_ingest_checks_is_not_transformed_and_the_command_fails(settings):
    from typer.testing import CliRunner

    from crimelake.cli import app

    _land_two_months(settings)
    result = CliRunner().invoke(app, ["run", "--home", str(settings.home)])
    assert result.exit_code == 1, result.output
    summary = result.output[result.output.index("Summary: "):]
    assert "2024-03 held back by police_uk/street:contract_expectations" in summary, summary
    # The clean month went through; the held month reached neither gold nor any public table.
    assert _months(settings.gold("fct_cell_month_counts")) == {"2024-02"}
    for name in ("cell_month_counts", "cell_month_counts_all_forces", "force_month_totals"):
        assert _months(settings.lake / "public" / name) == {"2024-02"}, name

    # Bronze never held the month; its 20 rows are all in quarantine, the 8 valid ones as held back.
    assert _months(settings.bronze("police_uk", "street")) == {"2024-02"}
    from crimelake import lake

    reasons = lake.read(settings.quarantine("police_uk", "street"), month="2024-03").column("reason").to_pylist()
    assert len(reasons) == 20 and reasons.count("month held back: contract_expectations") == 8

    # Run again: nothing new landed, the month is still held back and the command still fails.
    again = CliRunner().invoke(app, ["run", "--home", str(settings.home)])
    assert again.exit_code == 1 and "2024-03 held back by" in again.output, again.output


def test_downstream_automation_waits_for_upstream_blocking_checks():
    import dagster as dg

    from orchestration.defs.automation import checked_eager

    outcome = {"passed": False}

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["m"]),
              check_specs=[dg.AssetCheckSpec("contract_expectations", asset="bronze", blocking=True)])
    def bronze():
        return dg.MaterializeResult(check_results=[
            dg.AssetCheckResult(check_name="contract_expectations", passed=outcome["passed"])])

    @dg.asset(deps=[bronze], partitions_def=bronze.partitions_def, automation_condition=checked_eager())
    def marts():
        return None

    def requested(instance) -> int:
        first = dg.evaluate_automation_conditions(defs=[bronze, marts], instance=instance)
        dg.materialize([bronze], partition_key="m", instance=instance, raise_on_error=False, selection=[bronze])
        result = dg.evaluate_automation_conditions(defs=[bronze, marts], instance=instance, cursor=first.cursor)
        return result.get_num_requested(marts.key)

    assert requested(dg.DagsterInstance.ephemeral()) == 0
    outcome["passed"] = True
    assert requested(dg.DagsterInstance.ephemeral()) == 1


def test_every_dbt_gold_and_public_asset_waits_for_blocking_checks():
    from orchestration.definitions import defs

    specs = [s for s in defs().resolve_all_asset_specs() if s.group_name in
             ("staging", "intermediate", "marts", "gold", "public", "release")]
    assert len(specs) > 15
    assert any(s.group_name == "release" for s in specs)
    for spec in specs:
        assert "all_deps_blocking_checks_passed" in str(spec.automation_condition), spec.key


def _csv_line_num(data: bytes, encoding: str) -> int:
    """The reference count: the line Python's csv module has reached at the end of the text."""
    import csv
    import io

    reader = csv.reader(io.StringIO(data.decode(encoding, errors="replace"), newline="\n"))
    while True:
        try:
            next(reader)
        except StopIteration:
            break
        except csv.Error:
            continue
    return max(0, reader.line_num - 1)


@pytest.mark.parametrize("data", [
    b"", b"h", b"h\n", b"h\na", b"h\na\n", b"h\na\n\n\n", b"h\r\na\r\nb\r\n", b"h\na\rb\nc\n",
    b'h\na\n"b\nc"\n\n', b'h\n"unclosed\nx\ny', b"h\na\x00b\nc\n", b"h\n\xff\xfe\n\x81\n",
    "h\ncaf\u00e9,\u00a3\n".encode("cp1252"),
])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_the_independent_line_count_is_the_csv_modules(data, encoding):
    from crimelake.ingest import engine

    assert engine.count_lines(data, encoding) == _csv_line_num(data, encoding)


def test_newlines_counted_block_by_block_match_the_bytes_count_across_block_edges():
    import numpy as np

    from crimelake.ingest import engine

    rng = np.random.default_rng(3)
    data = bytearray(rng.choice(np.frombuffer(b"ab,\n", np.uint8), 3 * engine._BLOCK + 17).tobytes())
    for edge in (engine._BLOCK - 1, engine._BLOCK, 2 * engine._BLOCK, len(data) - 1):
        data[edge] = 0x0A
    for piece in (bytes(data), bytes(data[:engine._BLOCK]), bytes(data[5:]), b"", b"\n"):
        assert engine._newlines(piece) == piece.count(b"\n")


def test_rows_are_accounted_against_a_count_taken_apart_from_the_parser(settings, monkeypatch):
    from crimelake import lake
    from crimelake.ingest import engine
    from tests.factories import contract, csv_text, land, street_rows

    street = contract("police_uk", "street")
    land(settings, street, "2024-03", "2024-03-bedfordshire-street.csv", csv_text(street, street_rows(10)))
    assert engine.count_lines(b"h\na\n\"b\nc\"\n\n", "utf-8") == 4  # LF-ended lines after the header
    ok = engine.ingest_partition(settings, street, "2024-03")
    assert ok.counts_add_up and ok.rows_counted == 10 and not ok.held_back

    # A parser that loses a line (its own tally agreeing with it) is caught by the independent count.
    parse = engine.parse_bytes

    def losing(path, data, contract, **kw):
        parsed = parse(path, data, contract, **kw)
        parsed.lines = parsed.lines[:-1]
        parsed.columns = {k: v.slice(0, len(parsed.lines)) for k, v in parsed.columns.items()}
        return parsed

    monkeypatch.setattr(engine, "parse_bytes", losing)
    bad = engine.ingest_partition(settings, street, "2024-03")
    assert bad.rows_read == bad.rows_loaded + bad.rows_quarantined == 9 and bad.rows_counted == 10
    assert bad.held_back == ["rows_accounted_for"] and not bad.counts_add_up
    # Bronze keeps the month as first loaded; the nine rows read this time are quarantined as held back.
    assert lake.read(settings.bronze("police_uk", "street"), month="2024-03").num_rows == 10
    assert lake.version(settings.bronze("police_uk", "street")) == ok.bronze_version == bad.bronze_version
    reasons = lake.read(settings.quarantine("police_uk", "street"), month="2024-03").column("reason").to_pylist()
    assert reasons == ["month held back: rows_accounted_for"] * 9
