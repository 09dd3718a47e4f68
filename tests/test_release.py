"""Releases: readers see the gold and public versions the newest release names, and a run that fails anywhere
(a failed export, a failed blocking check) releases nothing."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from crimelake import lake, release
from crimelake.serve.store import LakeView
from tests.test_blocking_checks import _write_gold


def _publish_and_release(settings, first: str, last: str):
    import dagster as dg

    from orchestration.defs.serve.public import PUBLIC_ASSETS
    from orchestration.defs.serve.release import lake_release
    from orchestration.lib.resources import LakeResource

    return dg.materialize([*PUBLIC_ASSETS, lake_release], resources={"lake": LakeResource(home=str(settings.home))},
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                          tags={"dagster/asset_partition_range_start": first,
                                "dagster/asset_partition_range_end": last})


def test_a_release_names_every_gold_and_public_table_at_its_version(settings):
    assert release.latest(settings) is None
    _write_gold(settings, ["2024-01", "2024-02"])
    result = _publish_and_release(settings, "2024-01", "2024-02")
    assert result.success
    r = release.latest(settings)
    assert r is not None and r.release_id == 1 and r.months == "2024-01..2024-02"
    assert r.versions == {name: lake.version(settings.lake / name) for name in release.released_tables(settings)}
    assert {"gold/fct_cell_month_counts", "gold/dim_cells", "public/cell_month_counts"} <= set(r.versions)
    assert release.gold_versions(settings)["dim_cells"] == r.versions["gold/dim_cells"]
    assert release.version_to_read(settings, "ml/predictions") is None
    second = release.publish(settings, "manual")
    assert second.release_id == 2 and [h.release_id for h in release.history(settings)] == [1, 2]
    # Maintenance keeps every version the newest release names readable (vacuum stretches its retention to it).
    assert lake.recorded_versions(settings.lake) == {settings.lake / k: v for k, v in second.versions.items()}


def test_the_map_reads_the_released_versions_not_what_a_failed_run_left(settings):
    _write_gold(settings, ["2024-01"])
    assert _publish_and_release(settings, "2024-01", "2024-01").success
    view = LakeView(settings, refresh_seconds=0)
    released = view.frame("gold/fct_cell_month_counts")
    # A run that died after rewriting a gold table, before its release: the table's newest version is not served.
    path = settings.gold("fct_cell_month_counts")
    lake.replace_table(path, pa.Table.from_pandas(released.assign(incident_count=999), preserve_index=False))
    assert lake.version(path) > release.latest(settings).version_of("gold/fct_cell_month_counts")
    assert view.info("gold/fct_cell_month_counts").version == release.latest(settings).version_of(
        "gold/fct_cell_month_counts")
    assert (view.frame("gold/fct_cell_month_counts")["incident_count"] != 999).all()
    # Once released, it is.
    release.publish(settings, "next")
    assert (view.frame("gold/fct_cell_month_counts")["incident_count"] == 999).all()


def test_a_failed_blocking_check_releases_nothing(settings, monkeypatch):
    months = ["2024-01", "2024-02"]
    _write_gold(settings, months)
    assert _publish_and_release(settings, *months).success
    before = release.latest(settings)

    import orchestration.defs.serve.public as public_assets
    from crimelake.disclosure import protect

    # A faulty protect() under a threshold of 7: the disclosure audit fails, so the release step never runs.
    monkeypatch.setattr(public_assets, "protect", lambda frame, cols, **kw: protect(frame, cols, min_count=5))
    monkeypatch.setenv("CRIMELAKE_DISCLOSURE_THRESHOLD", "7")
    lake.replace_table(settings.gold("dim_cells"), lake.read(settings.gold("dim_cells")))  # a newer, unreleased gold
    failed = _publish_and_release(settings, *months)
    assert not failed.success
    assert not [e for e in failed.get_asset_materialization_events() if e.asset_key.path == ["lake", "release"]]
    after = release.latest(settings)
    assert after.release_id == before.release_id and after.versions == before.versions
    view = LakeView(settings, refresh_seconds=0)
    assert view.info("gold/dim_cells").version == before.version_of("gold/dim_cells")
    pd.testing.assert_frame_equal(view.frame("public/force_month_totals"),
                                  lake.read(settings.lake / "public" / "force_month_totals",
                                            version=before.version_of("public/force_month_totals")).to_pandas())
