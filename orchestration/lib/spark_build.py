"""dbt on Spark (CRIMELAKE_ENGINE=spark) under Dagster: one full build per run, reported by each dbt step.

Sail keeps its catalog per Spark session (checked with Sail 0.7.2: a second session on the same server does not
see a schema the first one created), and every dbt invocation opens a new session. A step building the monthly
models could not see the seeds an earlier step built, and a table left in lake/spark by an earlier run is unknown
to the next build, which would append to it (see crimelake.engine.clear_spark_output). So on Spark the first dbt
step of a run clears lake/spark and runs one `dbt build` of the whole project (every seed, model and test over
every month) in one session; every step, that one included, then reports its own nodes from that build's events:
its seeds and models as materializations, its tests as checks, and it fails when one of them failed, as it would
have running them itself. Months are not passed: the build holds every month, and gold exports the run's months.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

FAILED = {"error", "fail", "runtime error", "skipped"}
# Node rank: the step that builds it (seeds, then models rebuilt by month, then table models).
SEEDS, MONTHLY, TABLES = 0, 1, 2


def on_spark(dbt) -> bool:
    """Whether a dbt resource runs on Spark (the one `dbt_resource` makes for CRIMELAKE_ENGINE=spark)."""
    from crimelake.engine import TARGETS

    return dbt.target == TARGETS["spark"]


def require_spark_remote() -> str:
    """SPARK_REMOTE (the Spark Connect URL dbt-spark connects to); a clear error when it is not set."""
    from crimelake.engine import describe

    describe("spark")
    return os.environ["SPARK_REMOTE"].strip()


def build_dir(home: Path, run_id: str) -> Path:
    """Where a run's Spark build keeps its dbt artefacts and result events (beside the DuckDB warehouse)."""
    return home / "warehouse" / "spark_builds" / run_id


def ensure_full_build(context: dg.AssetExecutionContext, dbt, home: Path, manifest_path: Path) -> Path:
    """The run's full Spark build: run now by the first dbt step of the run, found by the later ones. Returns the
    folder holding its `events.jsonl` (dbt's result events) and `target/`."""
    from crimelake import engine

    out = build_dir(home, context.run_id)
    done = out / "done.json"
    if done.exists():
        return out
    url = require_spark_remote()
    # Builds of earlier runs are of no further use (lake/spark is rebuilt whole by this one).
    shutil.rmtree(out.parent, ignore_errors=True)
    out.mkdir(parents=True)
    engine.clear_spark_output(home)
    added = engine.write_cell_geometry(home)
    context.log.info(f"dbt on Spark ({url}): full build into {home / engine.SPARK_OUTPUT} "
                     f"({added} new cells in {engine.CELL_GEOMETRY})")
    invocation = dbt.cli(["build"], manifest=manifest_path, target_path=out / "target", raise_on_error=False)
    results = 0
    with open(out / "events.jsonl", "w") as f:
        for event in invocation.stream_raw_events():
            if event.is_result_event:
                f.write(json.dumps(event.raw_event) + "\n")
                results += 1
    returncode = invocation.process.wait()
    if results == 0:
        # Nothing ran (no connection, a parse error): there is nothing to report, only the error.
        raise RuntimeError(f"dbt build on Spark ran no node (exit code {returncode}): {invocation.get_error()}")
    done.write_text(json.dumps({"returncode": returncode, "results": results}))
    return out


def step_rank(node: Mapping[str, Any], is_monthly: Callable[[Mapping[str, Any]], bool]) -> int:
    if node.get("resource_type") == "seed":
        return SEEDS
    return MONTHLY if is_monthly(node) else TABLES


def report(context: dg.AssetExecutionContext, out: Path, manifest: Mapping[str, Any], translator, project,
           is_monthly: Callable[[Mapping[str, Any]], bool], all_check_keys) -> Iterator:
    """This step's events from the run's Spark build: materializations of its selected seeds and models, results
    of its selected checks, and observations of the tests that are no check but run with it (a test runs with the
    step that builds the last of the models it reads). Raises when one of them failed or was not built."""
    from dagster_dbt.asset_utils import get_asset_check_key_for_test
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

    nodes = manifest["nodes"]
    key_of = {uid: translator.get_asset_spec(manifest, uid, project).key
              for uid, n in nodes.items() if n["resource_type"] in ("model", "seed")}
    selected = set(context.selected_asset_keys)
    mine = {uid for uid, key in key_of.items() if key in selected}
    rank = max(step_rank(nodes[uid], is_monthly) for uid in mine)
    checks = set(context.selected_asset_check_keys)

    def owned(uid: str) -> bool:
        if uid in key_of:
            return uid in mine
        check = get_asset_check_key_for_test(manifest, translator, uid, project)
        if check is not None and check in all_check_keys:
            return check in checks
        parents = [p for p in nodes[uid]["depends_on"]["nodes"] if p in key_of]
        return (any(p in mine for p in parents)
                and max(step_rank(nodes[p], is_monthly) for p in parents) == rank)

    failed, built = [], set()
    target = out / "target"
    for line in (out / "events.jsonl").read_text().splitlines():
        event = DbtCoreCliEventMessage(raw_event=json.loads(line), event_history_metadata={})
        uid = event.raw_event["data"]["node_info"]["unique_id"]
        if uid not in nodes or not owned(uid):
            continue
        status = str(event.raw_event["data"]["node_info"].get("node_status", "")).lower()
        if status in FAILED:
            failed.append(f"{nodes[uid]['name']} ({status})")
        elif uid in key_of:
            built.add(uid)
        yield from event.to_default_asset_events(manifest, translator, context, target, project)
    failed += sorted(f"{nodes[uid]['name']} (not built)" for uid in mine - built
                     if not any(f.startswith(nodes[uid]["name"] + " ") for f in failed))
    if failed:
        raise dg.Failure(description=f"the Spark build ({out}) failed on: {', '.join(sorted(failed))}; its log is "
                                     f"in {target}")
