"""A baseline forecaster as an MLflow model: whichever method wins the backtest, the group's registered model has
a version that can forecast, with a signature, loadable with ``mlflow.pyfunc.load_model``.

Input (long format, so the signature does not change as months pass): one row per cell and month,
``h3_cell`` (str), ``month`` (``YYYY-MM``), ``incident_count`` (float; NaN where the cell's force-month was not
observed). A cell-month without a row had no crime, as in ``fct_cell_month_counts``; every cell to forecast must
have at least one row. Output: ``h3_cell`` and ``predicted_count`` for the month after the last month of the
input, made by ``ml.baselines`` from a panel of those cells (centres and neighbours from H3 itself).
"""

from __future__ import annotations

import re

import h3
import mlflow
import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy import sparse

from ml.baselines import BASELINES
from ml.cell_months import month_range
from ml.panel import GROUPS, Panel

COLUMNS = ("h3_cell", "month", "incident_count")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def history_frame(panel: Panel, group: str, cells: int | None = None) -> pd.DataFrame:
    """The input a baseline model reads, from ``panel`` (optionally its first ``cells`` cells only)."""
    counts = panel.group_counts(group)[: cells if cells is not None else panel.n_cells]
    n, m = counts.shape
    return pd.DataFrame({"h3_cell": np.repeat(panel.cells[:n].astype(str), m),
                         "month": np.tile(np.asarray(panel.months, dtype=str), n),
                         "incident_count": counts.astype(float).ravel()})


def history_panel(frame: pd.DataFrame, group: str) -> Panel:
    """A one-group panel of the cells in ``frame``; ValueError for missing columns, bad months, cells or counts."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"history needs columns {', '.join(COLUMNS)}; missing {', '.join(missing)}")
    if frame.empty:
        raise ValueError("history is empty: give at least one month of counts per cell")
    months = frame["month"].astype(str)
    bad = ~months.str.fullmatch(_MONTH)
    if bad.any():
        raise ValueError(f"month must be YYYY-MM, got {months[bad].iloc[0]!r}")
    cells = frame["h3_cell"].astype(str)
    invalid = [c for c in pd.unique(cells) if not h3.is_valid_cell(c)]
    if invalid:
        raise ValueError(f"not an H3 cell: {invalid[0]!r}")
    values = pd.to_numeric(frame["incident_count"], errors="coerce").to_numpy(float)
    if (values < 0).any():
        raise ValueError("incident_count must not be negative")
    if (np.isnan(values) & frame["incident_count"].notna().to_numpy()).any():
        raise ValueError("incident_count must be a number (NaN for an unobserved month)")
    ids = np.array(sorted(pd.unique(cells)), dtype=object)
    span = month_range(months.min(), months.max())
    row = pd.Index(ids).get_indexer(cells)
    col = pd.Index(span).get_indexer(months)
    counts = np.zeros((len(ids), len(span)))
    unobserved = np.isnan(values)
    np.add.at(counts, (row[~unobserved], col[~unobserved]), values[~unobserved])
    counts[row[unobserved], col[unobserved]] = np.nan
    lat, lng = np.array([h3.cell_to_latlng(c) for c in ids]).T
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True).transform(lng, lat)
    pos = {c: i for i, c in enumerate(ids)}
    pairs = [(i, pos[n]) for i, c in enumerate(ids) for n in h3.grid_ring(c, 1) if n in pos]
    ring1 = sparse.csr_matrix((np.ones(len(pairs)), tuple(np.array(pairs, dtype=int).reshape(-1, 2).T)),
                              shape=(len(ids), len(ids)))
    return Panel(cells=ids, months=span, counts={group: counts}, ring1=ring1,
                 ring2=sparse.csr_matrix((len(ids), len(ids))), xy=np.column_stack([x, y]),
                 area_km2=np.array([h3.cell_area(c, "km^2") for c in ids]),
                 force=np.full(len(ids), "", dtype=object), lsoa_code=np.full(len(ids), None, dtype=object),
                 observed=~np.isnan(counts))


class BaselineForecaster(mlflow.pyfunc.PythonModel):
    """One of ``ml.baselines.BASELINES`` for one forecast group, forecasting the month after its input."""

    def __init__(self, method: str, group: str):
        if method not in BASELINES:
            raise ValueError(f"unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
        if group not in GROUPS:
            raise ValueError(f"unknown forecast group {group!r}; choose from {', '.join(GROUPS)}")
        self.method, self.group = method, group

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        panel = history_panel(model_input, self.group)
        pred = BASELINES[self.method](panel, self.group, panel.n_months)
        return pd.DataFrame({"h3_cell": panel.cells.astype(str), "predicted_count": np.asarray(pred, float)})


def requirements() -> list[str]:
    """Stated outright: MLflow's own inference shells out to package managers and takes seconds."""
    import importlib.metadata as md

    return [f"{p}=={md.version(p)}" for p in ("numpy", "pandas", "scipy", "pyproj", "h3")] + [
        f"mlflow=={mlflow.__version__}"]
