{{ config(materialized='table') }}

{#- H3 geometry (centre, area, ring-1 and ring-2 neighbours) of every cell that has held an incident, on Spark:
    neither Spark nor Sail has H3 functions and dbt-spark runs Python models only on Databricks, so the geometry is
    computed in Python with the h3 library beside the bronze tables (crimelake.engine.write_cell_geometry, the same
    function DuckDB's Python model of this name calls) and selected here for the cells the study area holds. -#}

select
    activity.h3_cell,
    geometry.h3_resolution,
    geometry.centre_longitude,
    geometry.centre_latitude,
    geometry.area_km2,
    geometry.neighbours_ring1,
    geometry.neighbours_ring2
from {{ ref('int_cells_activity') }} as activity
-- A cell missing from the geometry table keeps its row with null geometry, which the not_null test reports.
left join {{ source('reference', 'h3_cells') }} as geometry on activity.h3_cell = geometry.h3_cell
