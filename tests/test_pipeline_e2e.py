"""The whole ingest layer on simulated data, through Dagster: every injected defect caught, nothing lost."""

from __future__ import annotations

from collections import Counter

import pytest

from crimelake import lake
from crimelake.ingest.engine import HELD_BACK
from crimelake.pipeline import run_landed
from crimelake.simulate import generate
from crimelake.status import table_status
from data_contracts.loader import default_contracts

pytestmark = [pytest.mark.integration]


def test_every_injected_defect_is_quarantined_and_counts_add_up(settings):
    summary = generate(settings.landing, seed=11, forces=["bedfordshire", "cheshire"], months=3,
                       incidents=300, defect_rate=0.01)
    runs = run_landed(settings)
    # Small files with a 1% defect rate may breach the 5% quarantine rule and block downstream work; the
    # bronze and quarantine tables are still written, which is what this test checks.
    assert [r.month for r in runs] == ["2024-01", "2024-02", "2024-03"]

    expected_lines = {(f, line) for f, lines in summary.bad_lines().items() for line in lines}
    quarantined, held = set(), set()  # held: every row of a source-month that failed a blocking check
    read = loaded = 0
    for c in default_contracts().values():
        if c.source == "interventions":
            continue  # a 3-month run plants no interventions: no log lands
        q = lake.read(settings.quarantine(c.source, c.entity))
        for f, line, why in zip(q.column("_source_file").to_pylist(), q.column("_source_line").to_pylist(),
                                q.column("reason").to_pylist(), strict=True):
            (held if why.startswith(HELD_BACK) else quarantined).add((f.rsplit("/", 1)[1], line))
        loaded += lake.read(settings.bronze(c.source, c.entity)).num_rows
        read += q.num_rows
    read += loaded
    expected = {(str(f).rsplit("/", 1)[-1], line) for f, line in expected_lines}
    # A defect injected into a held-back month is quarantined with the rest of that month, as held back.
    assert quarantined == expected - held
    failed_months = {r.month for r in runs if r.failed_checks}
    assert {f[:7] for f, _ in held} <= failed_months
    generated_rows = sum(summary.rows.values())
    duplicate_rows = sum(1 for d in summary.defect_records if d.kind == "duplicate_file")
    assert duplicate_rows >= 1
    # Every generated row is loaded or quarantined; duplicate copies (not counted in summary.rows) are not read.
    assert read == generated_rows
    statuses = Counter()
    for c in default_contracts().values():
        if c.source == "interventions":
            continue
        rf = lake.read(settings.rejected_files(c.source, c.entity))
        statuses.update(rf.column("status").to_pylist())
    assert statuses["duplicate"] == summary.defects["duplicate_file"]
    assert statuses["rejected"] == 0
    by_table = {f"{s.source}/{s.entity}": s for s in table_status(settings)}
    assert by_table["police_uk/street"].months == ["2024-01", "2024-02", "2024-03"]

