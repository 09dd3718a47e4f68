{{ config(materialized='table') }}

{#- Each H3 cell that has held an incident: its force, how many incidents that force recorded there, and the first and
    last month any force recorded one. The force is the one that recorded most of the cell's incidents in the first
    month it appears (British Transport Police cells overlap territorial forces; ties to the first force slug). It is
    fixed once the cell is first seen: later months never move a cell to another force, so a forecast made at any
    origin used the force the cell had then (no hindsight), and a backtest origin's inputs stay the same as history
    grows. Built from the per-month aggregate, never from the incidents. -#}

with months as (
    select h3_cell, min(month) as first_month, max(month) as last_month
    from {{ ref('int_cell_force_months') }}
    group by h3_cell
),

per_force as (
    select h3_cell, force, sum(incidents) as force_incidents
    from {{ ref('int_cell_force_months') }}
    group by h3_cell, force
),

ranked as (
    select
        first_seen.h3_cell,
        first_seen.force,
        per_force.force_incidents,
        row_number() over (
            partition by first_seen.h3_cell order by first_seen.incidents desc, first_seen.force
        ) as rn
    from {{ ref('int_cell_force_months') }} as first_seen
    inner join months on first_seen.h3_cell = months.h3_cell and first_seen.month = months.first_month
    inner join per_force on first_seen.h3_cell = per_force.h3_cell and first_seen.force = per_force.force
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
