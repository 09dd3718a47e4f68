"""The trace's dbt hop reads the manifest the Dagster project builds, without importing Dagster's dbt integration
(whose import cost a command-line trace seconds)."""

from __future__ import annotations

import subprocess
import sys


def test_the_trace_reads_the_manifest_dagster_builds():
    from crimelake.trace import DBT_MANIFEST
    from orchestration.lib.dbt import dbt_project

    assert dbt_project.manifest_path == DBT_MANIFEST


def test_the_dbt_hop_does_not_import_dagster_dbt(dbt_manifest):
    code = ("import sys\nfrom crimelake.trace import _dbt_hop\nhop = _dbt_hop()\n"
            "print(hop.ok, len(hop.data['models']), 'dagster_dbt' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True" and int(out[1]) > 0, out
    assert out[2] == "False", "crimelake.trace imported dagster_dbt"


def test_a_missing_manifest_is_a_broken_hop(tmp_path):
    from crimelake.trace import _dbt_hop

    hop = _dbt_hop(tmp_path / "manifest.json")
    assert not hop.ok and "missing" in hop.detail
