"""Versioned hotspot forecasts: one row per cell, group and target month, carrying everything an auditor needs
to trace it (model name, version and alias, MLflow run, the Delta versions of the tables its features read)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import h3
import numpy as np
import pandas as pd
import pyarrow as pa

PREDICTIONS_SCHEMA = pa.schema([
    ("prediction_id", pa.string()),
    ("h3_cell", pa.string()),
    ("h3_resolution", pa.int32()),
    ("force", pa.string()),
    ("forecast_group", pa.string()),
    ("target_month", pa.string()),
    ("predicted_count", pa.float64()),
    ("lower_90", pa.float64()),
    ("upper_90", pa.float64()),
    ("horizon", pa.int32()),
    ("rank", pa.int64()),
    ("percentile", pa.float64()),
    ("hotspot_1pct", pa.bool_()),
    ("hotspot_5pct", pa.bool_()),
    ("under_intervention", pa.bool_()),
    ("model_name", pa.string()),
    ("model_version", pa.string()),
    ("model_alias", pa.string()),
    ("mlflow_run_id", pa.string()),
    ("feature_tables", pa.string()),
    ("data_months", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
])


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str | None
    alias: str | None
    run_id: str


def prediction_id(run_id: str, group: str, month: str, cell: str) -> str:
    """Deterministic: the same model run forecasting the same cell and month always gets the same id."""
    return hashlib.sha256(f"{run_id}|{group}|{month}|{cell}".encode()).hexdigest()[:32]


def rank_cells(predicted: np.ndarray) -> np.ndarray:
    """1 = highest forecast; ties broken by cell order so the ranking is reproducible."""
    order = np.lexsort((np.arange(len(predicted)), -predicted))
    ranks = np.empty(len(predicted), dtype=np.int64)
    ranks[order] = np.arange(1, len(predicted) + 1)
    return ranks


def build(
    cells: np.ndarray,
    forces: np.ndarray,
    predicted: np.ndarray,
    *,
    group: str,
    target_month: str,
    model: ModelRef,
    feature_tables: dict[str, int],
    data_months: tuple[str, str],
    created_at: datetime | None = None,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    horizon: int | None = None,
    under_intervention: np.ndarray | None = None,
) -> pd.DataFrame:
    """The forecast for every cell of the study area, ranked, with hotspot flags at 1% and 5% of cells, its 90%
    interval (``lower`` / ``upper``, null when not given), the horizon it was made at (months between the last
    month the forecast read and ``target_month``) and whether the cell lies in an intervention active in
    ``target_month`` (``under_intervention``, False when not given): a fall there may be the intervention's."""
    n = len(cells)
    if n == 0:
        raise ValueError("no cells to forecast: the study area is empty")
    if len(predicted) != n or len(forces) != n:
        raise ValueError(f"{n} cells but {len(predicted)} predictions and {len(forces)} forces")
    ranks = rank_cells(np.asarray(predicted, dtype=float))
    top1 = max(1, int(np.ceil(0.01 * n)))
    top5 = max(1, int(np.ceil(0.05 * n)))
    now = created_at or datetime.now(UTC)
    return pd.DataFrame({
        "prediction_id": [prediction_id(model.run_id, group, target_month, c) for c in cells],
        "h3_cell": cells,
        "h3_resolution": np.array([h3.get_resolution(c) for c in cells], dtype=np.int32),
        "force": forces,
        "forecast_group": group,
        "target_month": target_month,
        "predicted_count": np.asarray(predicted, dtype=float),
        "lower_90": np.full(n, np.nan) if lower is None else np.asarray(lower, dtype=float),
        "upper_90": np.full(n, np.nan) if upper is None else np.asarray(upper, dtype=float),
        "horizon": pd.array([horizon] * n, dtype="Int32"),
        "rank": ranks,
        "percentile": 1.0 - (ranks - 1) / n,
        "hotspot_1pct": ranks <= top1,
        "hotspot_5pct": ranks <= top5,
        "under_intervention": np.zeros(n, dtype=bool) if under_intervention is None
        else np.asarray(under_intervention, dtype=bool),
        "model_name": model.name,
        "model_version": model.version,
        "model_alias": model.alias,
        "mlflow_run_id": model.run_id,
        "feature_tables": json.dumps(feature_tables, sort_keys=True),
        "data_months": f"{data_months[0]}..{data_months[1]}",
        "created_at": pd.Timestamp(now),
    })


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=PREDICTIONS_SCHEMA, preserve_index=False)
