{{ config(materialized='table') }}

{#- Incidents per H3 cell, month and forecast group, zero-filled: every cell of a force's study area has a row for
    every month that force has data for, so a quiet month is a 0, not a missing row. -#}

with incidents as (
    select * from {{ ref('fct_incidents') }} where h3_cell is not null
),

force_months as (
    select distinct force, month from incidents
),

grid as (
    select cells.h3_cell, cells.force, force_months.month
    from {{ ref('dim_cells') }} as cells
    inner join force_months on cells.force = force_months.force
),

groups as (
    select 'all_crime' as forecast_group
    union all select 'asb'
    union all select 'violence'
    union all select 'theft'
    union all select 'weapons'
),

counts as (
    {% for g in ['all_crime', 'asb', 'violence', 'theft', 'weapons'] %}
    select h3_cell, month, '{{ g }}' as forecast_group, count(*) as incident_count,
           sum(case when knife_enabled then 1 else 0 end) as knife_enabled_count
    from incidents where in_{{ g }}
    group by h3_cell, month
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    grid.h3_cell,
    grid.force,
    grid.month,
    groups.forecast_group,
    cast(coalesce(counts.incident_count, 0) as bigint) as incident_count,
    cast(coalesce(counts.knife_enabled_count, 0) as bigint) as knife_enabled_count
from grid
cross join groups
left join counts
    on grid.h3_cell = counts.h3_cell and grid.month = counts.month and groups.forecast_group = counts.forecast_group
