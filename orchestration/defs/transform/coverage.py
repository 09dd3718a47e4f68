"""The coverage ledger in the lake: gold/coverage, which force-months of each incident source arrived, with
checks that warn (never block) on missing and partial force-months: a gap is data, not an error."""

from collections import Counter

import dagster as dg

from orchestration.defs.transform.gold import GOLD_ASSET_ARGS, export
from orchestration.lib.resources import LakeResource

COVERAGE_KEY = dg.AssetKey(["gold", "coverage"])
LISTED = 50  # force-months named in a check's metadata


def _check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("no_missing_force_months", asset=COVERAGE_KEY, blocking=False,
                          description="Every expected force-month of every source arrived (WARN: a gap is data)."),
        dg.AssetCheckSpec("no_partial_force_months", asset=COVERAGE_KEY, blocking=False,
                          description="No force-month arrived with under the partial threshold of its trailing "
                                      "median (WARN)."),
    ]


def status_check(name: str, ledger, status: str) -> dg.AssetCheckResult:
    """Passes when no row of the ledger (a pyarrow table) has `status`; lists the force-months that do."""
    import pyarrow.compute as pc

    hits = ledger.filter(pc.equal(ledger.column("status"), status))
    listed = [f"{r['source']}/{r['force']}/{r['month']}" for r in hits.slice(0, LISTED).to_pylist()]
    return dg.AssetCheckResult(check_name=name, asset_key=COVERAGE_KEY, passed=hits.num_rows == 0,
                               severity=dg.AssetCheckSeverity.WARN,
                               metadata={"force_months": hits.num_rows,
                                         "listed": dg.MetadataValue.json(listed)})


@dg.asset(
    key=COVERAGE_KEY,
    deps=[dg.AssetKey(["marts", "fct_coverage"])],
    **GOLD_ASSET_ARGS,
    check_specs=_check_specs(),
    description="Coverage ledger `lake/gold/coverage` (dbt mart `marts.fct_coverage`): one row per incident source, "
                "force and expected month with status complete, partial or missing, rows, geocoded and LSOA shares, "
                "the force's trailing median and volume ratio, and flags (missing, partial, series_break, "
                "category_drop:<slug>, low_geocoding). Not partitioned: replaced whole on each run (a new month "
                "changes the expected span and the trailing medians). Forecasting treats a force-month "
                "with no complete source as unknown, never zero.",
)
def coverage(context: dg.AssetExecutionContext, lake: LakeResource):
    from crimelake import lake as delta

    settings = lake.settings()
    metadata = export(context, settings, "fct_coverage", "coverage", "month", whole=True)
    ledger = delta.read(settings.gold("coverage"), columns=["source", "force", "month", "status"])
    tally = Counter(ledger.column("status").to_pylist())
    counts = {s: tally.get(s, 0) for s in ("complete", "partial", "missing")}
    yield dg.MaterializeResult(metadata={**metadata, **{f"force_months_{k}": v for k, v in counts.items()}})
    yield status_check("no_missing_force_months", ledger, "missing")
    yield status_check("no_partial_force_months", ledger, "partial")


@dg.definitions
def coverage_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[coverage])
