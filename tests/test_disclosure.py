"""Disclosure control: no published count below the threshold, none recoverable by differencing, no records."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from crimelake.disclosure import check_public, protect, round_to_base


def test_small_counts_are_suppressed_and_the_rest_rounded():
    frame = pd.DataFrame({"area": list("abcdef"), "n": [0, 1, 4, 5, 12, 13]})
    out = protect(frame, ["n"], min_count=5)
    assert out["n"].isna().tolist() == [False, True, True, False, False, False]
    assert out["n_suppressed"].tolist() == [False, True, True, False, False, False]
    assert out["n"].dropna().astype(int).tolist() == [0, 5, 10, 15]
    assert check_public(out, ["n"], min_count=5) == []


def test_record_level_columns_are_refused():
    with pytest.raises(ValueError, match="record-level columns"):
        protect(pd.DataFrame({"incident_id": ["x"], "n": [9]}), ["n"])
    assert check_public(pd.DataFrame({"_source_line": [3], "n": [10]}), ["n"]) == ["record-level column _source_line"]


def test_check_catches_small_and_unrounded_counts():
    bad = pd.DataFrame({"n": [3.0, 12.0]})
    assert check_public(bad, ["n"], min_count=5) == ["n: 1 counts below 5", "n: counts not rounded to 5"]


def test_differencing_published_totals_cannot_recover_a_suppressed_count():
    rng = np.random.default_rng(0)
    for _ in range(200):
        parts = rng.integers(5, 60, size=4)
        hidden = int(rng.integers(1, 5))  # a small count that must stay hidden
        total = parts.sum() + hidden
        published_parts = round_to_base(parts)
        published_total = round_to_base([total])[0]
        # Every true value consistent with what is published: parts and total each within 2 of their rounding.
        candidates = set()
        for deltas in itertools.product(range(-2, 3), repeat=1):
            t = published_total + deltas[0]
            low = t - (published_parts + 2).sum()
            high = t - (published_parts - 2).sum()
            candidates |= {v for v in range(1, 5) if low <= v <= high}
        assert hidden in candidates and len(candidates) >= 2


# ----- the public exports: a run replaces only the months of its partition range ----------------------------------
def _gold_counts(months: list[str], bump: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sparse gold counts (only cells with incidents) for two forces sharing one public cell, and the study area."""
    import h3

    shared = h3.latlng_to_cell(52.0, -0.3, 7)
    beds = sorted(h3.cell_to_children(shared, 9))[:6] + sorted(h3.cell_to_children(h3.latlng_to_cell(52.13, -0.46, 7), 9))[:4]
    herts = sorted(h3.cell_to_children(shared, 9))[6:9]
    cells = pd.DataFrame({"h3_cell": beds + herts, "force": ["bedfordshire"] * len(beds) + ["hertfordshire"] * len(herts)})
    rng = np.random.default_rng(3)
    rows = []
    for m in months:
        for cell, force in zip(cells["h3_cell"], cells["force"], strict=True):
            for group in ("all_crime", "asb"):
                n = int(rng.integers(0, 9)) + (7 if m == bump else 0)
                # Hertfordshire's cells here only ever hold incidents some months: the shared cell must still
                # name both forces in every month.
                if n and not (force == "hertfordshire" and m != months[0]):
                    rows.append((cell, force, m, group, n))
    counts = pd.DataFrame(rows, columns=["h3_cell", "force", "month", "forecast_group", "incident_count"])
    return counts, cells


def _write_gold(settings, counts: pd.DataFrame, cells: pd.DataFrame) -> None:
    import pyarrow as pa

    from crimelake import lake

    lake.replace_table(settings.gold("fct_cell_month_counts"), pa.Table.from_pandas(counts, preserve_index=False))
    lake.replace_table(settings.gold("dim_cells"), pa.Table.from_pandas(cells, preserve_index=False))
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:]) - 1) // 3 + 1}" for m in counts["month"]})
    areas = pd.DataFrame({"lsoa_code": ["E01000001", "E01000002"] * len(quarters),
                          "quarter": [q for q in quarters for _ in range(2)], "local_authority_code": "E06000055",
                          "incidents_all_crime": np.arange(2 * len(quarters)) * 3 + int(counts["incident_count"].sum()) % 7,
                          "social_care_values_suppressed": 0})
    lake.replace_table(settings.gold("fct_area_quarter_indicators"), pa.Table.from_pandas(areas, preserve_index=False))


def _materialize(settings, first: str, last: str) -> None:
    import dagster as dg

    from orchestration.defs.serve.public import PUBLIC_ASSETS
    from orchestration.lib.resources import LakeResource

    result = dg.materialize(PUBLIC_ASSETS, resources={"lake": LakeResource(home=str(settings.home))},
                            instance=dg.DagsterInstance.ephemeral(),
                            tags={"dagster/asset_partition_range_start": first,
                                  "dagster/asset_partition_range_end": last})
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 and all(c.passed for c in checks)


def _files(path) -> dict[str, set[str]]:
    import pyarrow as pa
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pylist()
    out: dict[str, set[str]] = {}
    for a in actions:
        key = next(v for k, v in a.items() if k.startswith("partition."))
        out.setdefault(key, set()).add(a["path"])
    return out


def _public(settings, name: str) -> pd.DataFrame:
    from crimelake import lake

    frame = lake.read(settings.lake / "public" / name).to_pandas()
    return frame.sort_values(list(frame.columns[:4])).reset_index(drop=True)


PUBLIC_NAMES = ("cell_month_counts", "cell_month_counts_all_forces", "force_month_totals", "area_quarter_indicators")


def test_a_rerun_of_one_month_rewrites_only_that_month_and_equals_a_full_rebuild(settings, tmp_path):
    from crimelake.config import Settings

    months = ["2024-01", "2024-02", "2024-03", "2024-04"]
    counts, cells = _gold_counts(months)
    _write_gold(settings, counts, cells)
    _materialize(settings, months[0], months[-1])
    before = {n: _files(settings.lake / "public" / n) for n in PUBLIC_NAMES}
    assert set(before["cell_month_counts"]) == set(months)
    assert set(before["area_quarter_indicators"]) == {"2024-Q1", "2024-Q2"}

    # March is delivered again with more incidents; nothing else changes.
    counts, cells = _gold_counts(months, bump="2024-03")
    _write_gold(settings, counts, cells)
    _materialize(settings, "2024-03", "2024-03")
    for name in PUBLIC_NAMES:
        after = _files(settings.lake / "public" / name)
        replaced = "2024-Q1" if name == "area_quarter_indicators" else "2024-03"
        assert after[replaced].isdisjoint(before[name][replaced]), f"{name}: {replaced} was not rewritten"
        assert {k: v for k, v in after.items() if k != replaced} == \
               {k: v for k, v in before[name].items() if k != replaced}, f"{name}: other periods were rewritten"

    rebuilt = Settings.from_env(tmp_path / "rebuilt").prepare()
    _write_gold(rebuilt, counts, cells)
    _materialize(rebuilt, months[0], months[-1])
    for name in PUBLIC_NAMES:
        pd.testing.assert_frame_equal(_public(settings, name), _public(rebuilt, name), check_dtype=False)
    shared = _public(settings, "cell_month_counts_all_forces")
    assert (shared["forces"].str.contains(",")).groupby(shared["month"]).any().all(), \
        "the cell both forces cover names both in every month, not only where both recorded incidents"
    totals = _public(settings, "force_month_totals")
    # Every group of a delivered force-month (a group without rows is a 0); Hertfordshire delivered one month.
    assert len(totals) == (4 + 1) * 5 and (totals.loc[totals["forecast_group"] == "weapons", "incident_count"] == 0).all()


def test_a_month_with_no_gold_rows_empties_that_month_and_old_layouts_are_rebuilt_once(settings):
    import pyarrow as pa

    from crimelake import lake

    months = ["2024-01", "2024-02"]
    counts, cells = _gold_counts(months)
    _write_gold(settings, counts, cells)
    # A table written whole by the earlier layout (no partitions): the first run rebuilds it partitioned.
    old = lake.read(settings.gold("fct_cell_month_counts")).to_pandas().head(0)
    lake.replace_table(settings.lake / "public" / "force_month_totals", pa.Table.from_pandas(old))
    _materialize(settings, "2024-02", "2024-02")
    assert set(_files(settings.lake / "public" / "force_month_totals")) == set(months)

    _write_gold(settings, counts[counts["month"] != "2024-02"], cells)
    _materialize(settings, "2024-02", "2024-02")
    for name in PUBLIC_NAMES[:3]:
        assert set(_public(settings, name)["month"]) == {"2024-01"}, name


def test_a_public_frame_that_breaks_the_rules_is_never_written(settings, monkeypatch):
    import dagster as dg

    from crimelake import lake
    from orchestration.defs.serve import public
    from orchestration.lib.resources import LakeResource

    counts, cells = _gold_counts(["2024-01"])
    _write_gold(settings, counts, cells)

    def unprotected(frame, cells=None):  # raw sums: small and unrounded counts
        return frame.groupby(["force", "month", "forecast_group"], as_index=False)["incident_count"].sum()

    monkeypatch.setitem(public.PUBLIC_TABLES, "force_month_totals",
                        public.PublicTable("fct_cell_month_counts", unprotected, "month", tuple(public.COUNT_COLUMNS)))
    result = dg.materialize([public.build_public_asset("force_month_totals")], partition_key="2024-01",
                            resources={"lake": LakeResource(home=str(settings.home))},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.check_name == "disclosure_rules"
    rules = {f["rule"] for f in check.metadata["offending_rows"].value}
    assert "count not a multiple of 5" in rules
    assert not result.get_asset_materialization_events()
    assert not lake.table_exists(settings.lake / "public" / "force_month_totals")


def test_totals_that_would_pin_a_suppressed_count_are_withheld():
    from crimelake.disclosure import suppress_pinned_totals
    from crimelake.disclosure_check import recoverable

    rng = np.random.default_rng(1)
    before = after = withheld = 0
    for _ in range(300):
        n = int(rng.integers(1, 5))
        parts = pd.DataFrame({"g": "a", "cell": [f"c{i}" for i in range(n)], "incident_count": rng.integers(1, 12, n)})
        totals = parts.groupby("g", as_index=False)["incident_count"].sum()
        shown_parts, shown_totals = protect(parts, ["incident_count"], min_count=5), protect(totals, ["incident_count"], min_count=5)
        before += bool(recoverable(shown_totals, shown_parts, ["g"], ["cell"], "incident_count", min_count=5, base=5))
        safe = suppress_pinned_totals(shown_totals, shown_parts, ["g"], "incident_count", min_count=5)
        after += bool(recoverable(safe, shown_parts, ["g"], ["cell"], "incident_count", min_count=5, base=5))
        withheld += int(safe["incident_count"].isna().sum() - shown_totals["incident_count"].isna().sum())
        assert bool(safe["incident_count_suppressed"].iloc[0]) == pd.isna(safe["incident_count"].iloc[0])
    # The audit (written separately) finds pinned values without the secondary suppression and none with it, and
    # only the totals that pinned something are withheld.
    assert before > 0 and after == 0 and withheld == before


def test_a_count_rounded_below_the_threshold_is_suppressed():
    out = protect(pd.DataFrame({"incident_count": [6, 7, 8, 12]}), ["incident_count"], min_count=7)
    assert out["incident_count"].isna().tolist() == [True, True, False, False]  # 6 and 7 round to 5
    assert out["incident_count"].dropna().tolist() == [10, 10]


def test_a_long_range_published_a_month_at_a_time_equals_one_pass_and_publishes_nothing_unless_all_pass(
        settings, tmp_path, monkeypatch):
    import dagster as dg
    from deltalake import DeltaTable

    from crimelake import lake
    from crimelake.config import Settings
    from orchestration.defs.serve import public
    from orchestration.lib.resources import LakeResource

    months = ["2024-01", "2024-02", "2024-03", "2024-04"]
    counts, cells = _gold_counts(months)
    _write_gold(settings, counts, cells)
    monkeypatch.setenv("CRIMELAKE_WRITE_CHUNK_MONTHS", "1")
    _materialize(settings, months[0], months[-1])
    # The first build writes each month in its own commit.
    assert DeltaTable(str(settings.lake / "public" / "cell_month_counts")).version() == len(months) - 1
    monkeypatch.setenv("CRIMELAKE_WRITE_CHUNK_MONTHS", "36")
    once = Settings.from_env(tmp_path / "once").prepare()
    _write_gold(once, counts, cells)
    _materialize(once, months[0], months[-1])
    assert DeltaTable(str(once.lake / "public" / "cell_month_counts")).version() == 0
    for name in PUBLIC_NAMES:
        pd.testing.assert_frame_equal(_public(settings, name), _public(once, name), check_dtype=False)

    # A month that breaks the rules in the last part of the range: no part of the range is published.
    monkeypatch.setenv("CRIMELAKE_WRITE_CHUNK_MONTHS", "1")
    protected = public.PUBLIC_TABLES["force_month_totals"].make

    def leaky(frame, cells=None):
        out = protected(frame, cells=cells)
        out.loc[out["month"] == "2024-04", "incident_count"] += 1
        return out

    monkeypatch.setitem(public.PUBLIC_TABLES, "force_month_totals",
                        public.PublicTable("fct_cell_month_counts", leaky, "month", tuple(public.COUNT_COLUMNS)))
    before = DeltaTable(str(settings.lake / "public" / "force_month_totals")).version()
    result = dg.materialize([public.build_public_asset("force_month_totals")],
                            resources={"lake": LakeResource(home=str(settings.home))},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                            tags={"dagster/asset_partition_range_start": months[0],
                                  "dagster/asset_partition_range_end": months[-1]})
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and {f["month"] for f in check.metadata["offending_rows"].value} == {"2024-04"}
    assert check.metadata["rows_checked"].value == len(_public(once, "force_month_totals"))
    assert DeltaTable(str(settings.lake / "public" / "force_month_totals")).version() == before
    assert lake.table_exists(settings.lake / "public" / "force_month_totals")
