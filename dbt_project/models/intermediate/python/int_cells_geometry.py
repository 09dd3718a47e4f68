"""H3 geometry of every cell that has held an incident: centre, area and neighbours, computed with the h3 library
(DuckDB's H3 extension downloads at run time and cannot be used offline).

A cell's geometry never changes at a given resolution, so the model is incremental: a build computes only the cells
that are new since the last one. The cell list comes from SQL aggregates, never from the incidents themselves.
"""

import h3
import pandas as pd

COLUMNS = ["h3_cell", "h3_resolution", "centre_longitude", "centre_latitude", "area_km2", "neighbours_ring1",
           "neighbours_ring2"]


def geometry(cells: list[str]) -> pd.DataFrame:
    rows = []
    for cell in cells:
        lat, lon = h3.cell_to_latlng(cell)
        rows.append((cell, h3.get_resolution(cell), lon, lat, h3.cell_area(cell, unit="km^2"),
                     ",".join(sorted(h3.grid_ring(cell, 1))), ",".join(sorted(h3.grid_ring(cell, 2)))))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"h3_cell": "object", "h3_resolution": "int64", "centre_longitude": "float64",
                         "centre_latitude": "float64", "area_km2": "float64", "neighbours_ring1": "object",
                         "neighbours_ring2": "object"})


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert", unique_key="h3_cell")
    cells = dbt.ref("int_cells_activity").select("h3_cell")
    if dbt.is_incremental:
        cells = cells.except_(session.sql(f"select h3_cell from {dbt.this}"))
    return geometry(sorted(row[0] for row in cells.fetchall()))
