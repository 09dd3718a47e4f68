"""The sensor-driven path: on a home `crimelake run` built, a month dropped into landing reaches the public tables
and the map through the landing sensor and the automation conditions alone, and nothing already loaded runs again.
"""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from crimelake import lake
from crimelake.pipeline import run_landed, run_transform
from crimelake.simulate import generate
from orchestration.defs.ingest.automation import landing_sensor

pytestmark = [pytest.mark.integration]

NEW = "2024-02"


def built_by_run(settings, tmp_path):
    """A home `crimelake run` built over 2024-01 (one force, every source), with 2024-02's files set aside."""
    generate(settings.landing, seed=7, forces=["city-of-london"], months=2, incidents=60, defect_rate=0)
    aside = tmp_path / "aside"
    for folder in sorted(settings.landing.glob(f"*/{NEW}")):
        shutil.move(folder, aside / folder.parent.name)
    assert all(r.success for r in run_landed(settings))
    assert run_transform(settings).success
    return aside


def drop(settings, aside) -> None:
    for folder in sorted(aside.iterdir()):
        shutil.move(folder, settings.landing / folder.name / NEW)


def _months(path) -> set[str]:
    return set(lake.read(path).column("month").to_pylist())


def test_automation_carries_a_new_month_to_the_release_and_nothing_else(settings, tmp_path):
    from orchestration.definitions import defs as build

    aside = built_by_run(settings, tmp_path)
    defs = build()
    instance = dg.DagsterInstance.get()
    ctx = dg.build_sensor_context(instance=instance, definitions=defs)
    assert isinstance(landing_sensor(ctx), dg.SkipReason)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0

    drop(settings, aside)
    ingest = defs.resolve_job_def("ingest_landing_job")
    requests = landing_sensor(ctx)
    assert {r.partition_key for r in requests} == {NEW}
    for r in requests:
        assert ingest.execute_in_process(instance=instance, partition_key=r.partition_key,
                                         asset_selection=r.asset_selection, tags=r.tags).success

    # Tick after tick, run what the conditions request (the models' own conditions aside: they are tested with
    # the forecasting assets), as the daemon would, until nothing more is requested.
    cursor, launched = first.cursor, []
    job = defs.resolve_implicit_global_asset_job_def()
    for _ in range(6):
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = tick.cursor
        runs: dict[str, list[dg.AssetKey]] = {}
        for key in defs.resolve_asset_graph().get_all_asset_keys():
            if key.path[0] != "ml":
                for partition in tick.get_requested_partitions(key):
                    runs.setdefault(partition, []).append(key)
        if not runs:
            break
        for partition, keys in runs.items():
            launched.append((partition, {k.path[0] for k in keys}))
            assert job.execute_in_process(instance=instance, partition_key=partition, asset_selection=keys).success
    assert launched, "no run was requested for the new month"
    # The new month's run, then one run of the whole tables (no partition) built from it.
    assert [p for p, _ in launched] == [NEW, None]
    layers = set().union(*(ks for _, ks in launched))
    assert {"staging", "marts", "gold", "public", "lake"} <= layers
    assert _months(settings.gold("fct_cell_month_counts")) == {"2024-01", NEW}
    assert NEW in _months(settings.lake / "public" / "cell_month_counts")


def test_a_month_dropped_under_the_running_ui_reaches_the_map(tmp_path):
    """End to end through `crimelake ui` (dagster dev: the daemon, its sensors and run queue) and `crimelake
    serve`, on the smallest home: the dropped month is served, and no run touches a month already loaded."""
    from benchmarks.landing_to_map import LandingToMapError, measure

    try:
        result = measure(tmp_path, forces=["city-of-london"], months=2, incidents=60, timeout=900)
    except LandingToMapError as e:
        pytest.fail(str(e))
    assert result["month_dropped"] == NEW
    assert result["runs_before_drop"] == []
    assert result["runs_for_loaded_months"] == []
    ingest = [r for r in result["runs_after_drop"] if r["job"] == "ingest_landing_job"]
    assert ingest and {r["month"] for r in ingest} == {NEW}
