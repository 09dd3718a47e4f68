{{ config(materialized='table') }}

{#- The study area: every H3 cell that has held an incident, with its force, centre, area, neighbours and LSOA. -#}

select
    geo.h3_cell,
    geo.h3_resolution,
    activity.force,
    geo.centre_longitude,
    geo.centre_latitude,
    geo.area_km2,
    geo.neighbours_ring1,
    geo.neighbours_ring2,
    lsoas.lsoa_code,
    lsoas.lsoa_month,
    activity.first_month,
    activity.last_month
from {{ ref('int_cells_activity') }} as activity
inner join {{ ref('int_cells_geometry') }} as geo on activity.h3_cell = geo.h3_cell
left join {{ ref('int_cells_lsoas') }} as lsoas on activity.h3_cell = lsoas.h3_cell
