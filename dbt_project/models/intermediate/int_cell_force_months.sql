{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

{#- Incidents per H3 cell, recording force and month (every counted incident, whatever its category): the small
    aggregate the study area is built from, so no model reads every incident of every month to list cells. -#}

select
    h3_cell,
    force,
    month,
    count(*) as incidents
from {{ ref('int_incidents_deduplicated') }}
where not is_superseded and h3_cell is not null and {{ crimelake.month_filter() }}
group by h3_cell, force, month
