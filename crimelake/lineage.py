"""OpenLineage run events for every asset materialization, written to a file transport under the home
(`lineage/openlineage.jsonl`, one event per line) so the lineage can be loaded into any OpenLineage backend.

Datasets are named by where they live: landing files (`file://<home>/landing`, versioned by SHA-256), Delta
tables (`file://<home>/lake`, versioned by Delta version), warehouse tables (`duckdb://<home>/warehouse`) and
MLflow runs (`mlflow://<tracking uri>`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crimelake.config import Settings

PRODUCER = "urn:crimelake:orchestration"
JOB_NAMESPACE = "crimelake"


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str
    version: str | None = None
    rows: int | None = None


def delta(settings: Settings, path: Path, version: int | None, rows: int | None = None) -> Dataset:
    return Dataset(f"file://{settings.lake}", path.relative_to(settings.lake).as_posix(),
                   None if version is None else str(version), rows)


def landing_file(settings: Settings, relative: str, sha256: str) -> Dataset:
    return Dataset(f"file://{settings.home}", relative, sha256)


def warehouse(settings: Settings, relation: str) -> Dataset:
    return Dataset(f"duckdb://{settings.warehouse}", relation)


def log_path(settings: Settings) -> Path:
    return settings.home / "lineage" / "openlineage.jsonl"


def emit(settings: Settings, job: str, dagster_run_id: str, inputs: list[Dataset], outputs: list[Dataset]) -> str:
    """Write one COMPLETE run event; returns its OpenLineage run id (stable for a Dagster run and job)."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import dataset_version_dataset, output_statistics_output_dataset
    from openlineage.client.transport.file import FileConfig, FileTransport

    def facets(d: Dataset) -> dict:
        return {"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=d.version)} \
            if d.version is not None else {}

    run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{dagster_run_id}/{job}"))
    path = log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime.now(UTC).isoformat(),
        producer=PRODUCER,
        run=Run(runId=run_id),
        job=Job(namespace=JOB_NAMESPACE, name=job),
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=facets(d)) for d in inputs],
        outputs=[OutputDataset(
            namespace=d.namespace, name=d.name, facets=facets(d),
            outputFacets={"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=d.rows)} if d.rows is not None else {},
        ) for d in outputs],
    )
    client.emit(event)
    return run_id


def events(settings: Settings) -> list[dict]:
    path = log_path(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
