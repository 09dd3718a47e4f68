{{ config(materialized='table') }}

{#- Each H3 cell that has held an incident: the force that recorded most of its incidents (British Transport Police
    cells overlap territorial forces; ties to the first force slug), how many that force recorded, and the first and
    last month any force recorded one. Built from the per-month aggregate, never from the incidents. -#}

with per_force as (
    select h3_cell, force, sum(incidents) as force_incidents
    from {{ ref('int_cell_force_months') }}
    group by h3_cell, force
),

ranked as (
    select
        h3_cell, force, force_incidents,
        row_number() over (partition by h3_cell order by force_incidents desc, force) as rn
    from per_force
),

months as (
    select h3_cell, min(month) as first_month, max(month) as last_month
    from {{ ref('int_cell_force_months') }}
    group by h3_cell
)

select
    ranked.h3_cell,
    ranked.force,
    ranked.force_incidents,
    months.first_month,
    months.last_month
from ranked
inner join months on ranked.h3_cell = months.h3_cell
where ranked.rn = 1
