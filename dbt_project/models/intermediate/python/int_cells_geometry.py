"""H3 geometry of every cell that has held an incident: centre, area and neighbours, computed with the h3 library
(DuckDB's H3 extension downloads at run time and cannot be used offline). Built on DuckDB; on Spark the SQL model
of the same name reads the same geometry from a Delta table (dbt-spark runs Python models only on Databricks).

A cell's geometry never changes at a given resolution, so the model is incremental: a build computes only the cells
that are new since the last one. The cell list comes from SQL aggregates, never from the incidents themselves.
"""

from crimelake.engine import cell_geometry


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert", unique_key="h3_cell")
    cells = dbt.ref("int_cells_activity").select("h3_cell")
    if dbt.is_incremental:
        cells = cells.except_(session.sql(f"select h3_cell from {dbt.this}"))
    return cell_geometry(sorted(row[0] for row in cells.fetchall()))
