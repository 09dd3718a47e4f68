"""H3 cell geometry for every cell that holds an incident: centre, area and neighbours, computed with the h3
library (DuckDB's H3 extension downloads at run time and cannot be used offline)."""

import h3
import pandas as pd


def model(dbt, session):
    dbt.config(materialized="table")
    incidents = dbt.ref("int_incidents_deduplicated").df()
    incidents = incidents[incidents["h3_cell"].notna() & ~incidents["is_superseded"].astype(bool)]
    # A cell belongs to the force that recorded most of its incidents (BTP cells overlap territorial forces).
    per_force = incidents.groupby(["h3_cell", "force"]).size().rename("n").reset_index()
    per_force = per_force.sort_values(["h3_cell", "n", "force"], ascending=[True, False, True])
    cells = per_force.drop_duplicates("h3_cell").rename(columns={"n": "force_incidents"})
    months = incidents.groupby("h3_cell")["month"].agg(["min", "max"]).reset_index()
    cells = cells.merge(months, on="h3_cell")
    rows = []
    for cell in cells["h3_cell"]:
        lat, lon = h3.cell_to_latlng(cell)
        rows.append({
            "h3_cell": cell,
            "h3_resolution": h3.get_resolution(cell),
            "centre_longitude": lon,
            "centre_latitude": lat,
            "area_km2": h3.cell_area(cell, unit="km^2"),
            "neighbours_ring1": ",".join(sorted(h3.grid_ring(cell, 1))),
            "neighbours_ring2": ",".join(sorted(h3.grid_ring(cell, 2))),
        })
    geo = pd.DataFrame(rows, columns=["h3_cell", "h3_resolution", "centre_longitude", "centre_latitude", "area_km2",
                                      "neighbours_ring1", "neighbours_ring2"])
    out = cells.merge(geo, on="h3_cell").rename(columns={"min": "first_month", "max": "last_month"})
    return out
