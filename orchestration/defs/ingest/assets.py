"""Ingest assets: one per source entity, keyed [source, entity] like the dbt source each one feeds.

The assets are thin: the reading, checking and writing live in `crimelake.ingest`; here they are scheduled,
partitioned by month, and their counts, Delta versions and check results reported to Dagster.
"""


import dagster as dg

from crimelake import memory
from crimelake.ingest.engine import ACCOUNTED, CONTRACT, IngestResult, bronze_schema, ingest_partition
from crimelake.ingest.landing import fingerprint
from data_contracts.loader import Contract, default_contracts
from orchestration.lib.partitions import monthly_partitions
from orchestration.lib.resources import LakeResource

INGEST_GROUP = "ingest"

CHECK_ACCOUNTED = ACCOUNTED
CHECK_FILES = "no_rejected_files"
CHECK_CONTRACT = CONTRACT
BLOCKING_CHECKS = (CHECK_ACCOUNTED, CHECK_CONTRACT)
# Materialization metadata: the blocking checks that failed for the month (empty when it passed them all).
HELD_BACK = "held_back_by"


def month_suite(contract):
    """The blocking check of a month before it is committed: the contract's suite on every parsed row, typed,
    before ingest's rules set any aside (less the publisher's repeated rows, which ingest resolves, keeping each
    once), with the share of rows set aside against the contract's limit."""
    from data_contracts.expectations import frame_part, validate_frame

    def validate(r: IngestResult):
        # Repeated rows are resolved, not lost: they do not count against the share ingest may set aside.
        return validate_frame(contract, r.typed if r.typed is not None else r.table, rows_read=r.rows_counted,
                              rows_quarantined=max(0, r.rows_counted - r.rows_loaded - r.rows_duplicate),
                              before_filtering=True)

    # Each file's typed rows are made ready for the suite as the file is read, beside the other files.
    validate.prepare = lambda rows: frame_part(contract, rows)
    return validate

def reported(done: int, total: int, steps: int = 4) -> bool:
    """Whether reading file `done` of `total` is worth a log line: each one is a write to the event log, so a
    month of 44 forces is reported by quarters, not file by file."""
    return done == total or done * steps // total != (done - 1) * steps // total


def _files_markdown(result: IngestResult) -> str:
    lines = ["| file | status | read | loaded | quarantined | reason |", "|---|---|---|---|---|---|"]
    for f in result.files:
        reason = f.reason.replace("|", "\\|")
        lines.append(f"| {f.file} | {f.status} | {f.rows_read} | {f.rows_loaded} | {f.rows_quarantined} | {reason} |")
    return "\n".join(lines)


def _table_schema(contract: Contract) -> dg.TableSchema:
    described = {c.name: (c.description or f"{c.header} ({c.logical_type})") for c in contract.columns}
    return dg.TableSchema(columns=[
        dg.TableColumn(f.name, str(f.type), description=described.get(f.name, "")) for f in bronze_schema(contract)
    ])


def build_ingest_asset(contract: Contract) -> dg.AssetsDefinition:
    key = dg.AssetKey([contract.source, contract.entity])
    specs = [
        dg.AssetCheckSpec(CHECK_ACCOUNTED, asset=key, blocking=True,
                          description="Every data line, counted by a reader apart from the ingest parser (Python's "
                                      "csv module), is either loaded or quarantined; checked before the month is "
                                      "committed to bronze."),
        dg.AssetCheckSpec(CHECK_FILES, asset=key,
                          description="No landed file of this month was rejected whole (unreadable, wrong header, "
                                      "wrong name); duplicates and superseded deliveries are reported, not failed."),
        dg.AssetCheckSpec(CHECK_CONTRACT, asset=key, blocking=True,
                          description=f"The great-expectations suite generated from contract {contract.ref}, "
                                      "and its quality rules, pass on every row of the month as parsed and typed "
                                      "(before ingest sets any aside); checked before the month is committed."),
    ]

    @dg.asset(
        key=key,
        partitions_def=monthly_partitions,
        group_name=INGEST_GROUP,
        kinds={"python", "deltalake"},
        check_specs=specs,
        description=(
            f"Bronze Delta table `lake/bronze/{contract.source}/{contract.entity}`: {contract.description} "
            f"One row per loaded data line, typed by contract {contract.ref}, with lineage columns "
            "(_source_file, _source_sha256, _source_line, _contract, _ingest_run_id, _ingested_at). "
            "Partitioned by month; a run replaces its month. Rejected rows go to "
            f"`lake/quarantine/{contract.source}/{contract.entity}`."
        ),
        metadata={
            "contract": contract.ref,
            "contract_file": dg.MetadataValue.path(str(contract.path)),
            "classification": contract.classification,
            "owner": contract.owner,
            "dagster/column_schema": _table_schema(contract),
        },
        tags={"classification": contract.classification},
    )
    def _ingest(context: dg.AssetExecutionContext, lake: LakeResource):
        settings = lake.settings()
        month = context.partition_key
        fp = fingerprint(settings, contract.source, month)

        def progress(done: int, total: int, name: str) -> None:
            if reported(done, total):
                context.log.info(f"{contract.source}/{contract.entity} {month}: read {done}/{total} files ({name})")

        result = ingest_partition(settings, contract, month, run_id=context.run_id, progress=progress,
                                  validate=month_suite(contract))
        for f in result.rejected:
            context.log.error(f"rejected file {f.file}: {f.reason}")
        suite = result.validation
        if not suite.passed:
            context.log.error(f"contract {contract.ref} breached for {month}:\n{suite.summary()}")
        if result.held_back:
            context.log.error(f"{contract.source}/{contract.entity} {month} held back from bronze by "
                              f"{', '.join(result.held_back)}: its rows are quarantined, bronze keeps what it held")

        from crimelake import lineage

        lineage.emit(
            settings, f"{contract.source}/{contract.entity}", context.run_id,
            inputs=[lineage.landing_file(settings, f.file, f.sha256) for f in result.files if f.status == "loaded"],
            outputs=[
                lineage.delta(settings, settings.bronze(contract.source, contract.entity), result.bronze_version,
                              result.rows_loaded),
                lineage.delta(settings, settings.quarantine(contract.source, contract.entity),
                              result.quarantine_version, result.rows_quarantined),
                lineage.delta(settings, settings.rejected_files(contract.source, contract.entity),
                              result.rejected_version, len(result.files) - sum(f.status == "loaded" for f in result.files)),
            ],
        )
        rejected = [f"{f.file}: {f.reason}" for f in result.rejected]
        # What reads this month (dbt, gold, public; `crimelake run` and the eager conditions) looks here and at
        # the blocking checks below: a month held back goes no further until a new load passes.
        held = result.held_back
        checks = [
            dg.AssetCheckResult(
                check_name=CHECK_ACCOUNTED, passed=result.counts_add_up,
                metadata={"rows_counted": result.rows_counted, "rows_read": result.rows_read,
                          "rows_loaded": result.rows_loaded, "rows_quarantined": result.rows_quarantined},
            ),
            dg.AssetCheckResult(
                check_name=CHECK_FILES, passed=not rejected,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"rejected_files": dg.MetadataValue.json(rejected),
                          "files_rejected": len(rejected)},
                description="; ".join(rejected) or None,
            ),
            dg.AssetCheckResult(check_name=CHECK_CONTRACT, passed=suite.passed, metadata=suite.to_metadata()),
        ]
        out = dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_loaded,
                "rows_read": result.rows_read,
                "rows_counted": result.rows_counted,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "files_read": sum(1 for f in result.files if f.status == "loaded"),
                "files_not_read": len(result.files) - sum(1 for f in result.files if f.status == "loaded"),
                "files": dg.MetadataValue.md(_files_markdown(result)),
                "quarantine_reasons": dg.MetadataValue.json(result.quarantine_reasons),
                "delta_version": result.bronze_version,
                "quarantine_delta_version": result.quarantine_version,
                "rejected_files_delta_version": result.rejected_version,
                "table_uri": dg.MetadataValue.path(str(settings.bronze(contract.source, contract.entity))),
                "landing_fingerprint": fp,
                HELD_BACK: ", ".join(held),
                "contract": contract.ref,
            },
            check_results=checks,
        )
        # A month's rows are written: hand their memory back before the next step (dbt runs beside this process).
        # What the month made is young (it was made with the collector paused): a collection of the young
        # generations finds it. A full one walked the whole process for 0.4 to 0.5 s, once per source and month,
        # and freed nothing more on a national month (the pages come back from Arrow's pool and the C library).
        del result, suite
        memory.release(generation=1)
        return out

    return _ingest


INGEST_ASSETS = [build_ingest_asset(c) for c in default_contracts().values()]


@dg.definitions
def ingest_assets() -> dg.Definitions:
    return dg.Definitions(assets=INGEST_ASSETS)
