"""Tiny H3 count panels with known answers, shaped like the gold tables forecasting reads."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd

from ml.panel import GROUPS, Panel, month_add

CENTRE = h3.latlng_to_cell(52.2053, 0.1218, 9)  # Cambridge


def disk(k: int, centre: str = CENTRE) -> list[str]:
    """The full H3 disk of radius k, sorted: the order the panel keeps its rows in."""
    return sorted(h3.grid_disk(centre, k))


def gold_frames(
    counts: dict[str, np.ndarray], cells: list[str], force: str = "cambridgeshire", start: str = "2022-01"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``fct_cell_month_counts`` and ``dim_cells`` shaped frames for (cells x months) count matrices per group;
    groups not given are zero."""
    n_months = next(iter(counts.values())).shape[1]
    months = [month_add(start, i) for i in range(n_months)]
    rows = []
    for g in GROUPS:
        m = counts.get(g, np.zeros((len(cells), n_months)))
        for i, c in enumerate(cells):
            for j, mo in enumerate(months):
                rows.append((c, force, mo, g, int(m[i, j]), 0))
    fct = pd.DataFrame(
        rows, columns=["h3_cell", "force", "month", "forecast_group", "incident_count", "knife_enabled_count"]
    )
    dim = pd.DataFrame(
        {
            "h3_cell": cells,
            "h3_resolution": 9,
            "force": force,
            "centre_longitude": [h3.cell_to_latlng(c)[1] for c in cells],
            "centre_latitude": [h3.cell_to_latlng(c)[0] for c in cells],
            "area_km2": [h3.cell_area(c, "km^2") for c in cells],
            "neighbours_ring1": [",".join(sorted(h3.grid_ring(c, 1))) for c in cells],
            "neighbours_ring2": [",".join(sorted(h3.grid_ring(c, 2))) for c in cells],
            "lsoa_code": [f"E0100000{i % 3}" for i in range(len(cells))],
            "first_month": months[0],
            "last_month": months[-1],
        }
    )
    return fct, dim


def make_panel(counts: dict[str, np.ndarray], cells: list[str], **kw) -> Panel:
    return Panel.from_frames(*gold_frames(counts, cells, **kw))
