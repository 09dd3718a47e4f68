{{ config(materialized='incremental', on_schema_change='fail', **crimelake.monthly_incremental()) }}

{#- Incidents per H3 cell, recording force, month and forecast group, stored sparse: a row exists only where at
    least one incident was counted. A cell with no row in a month its force delivered holds zero incidents; a
    force-month the coverage ledger (fct_coverage) does not show as complete is unknown, not zero. -#}

with incidents as (
    select h3_cell, force, month, knife_enabled, in_all_crime, in_asb, in_violence, in_theft, in_weapons
    from {{ ref('fct_incidents') }}
    where h3_cell is not null and {{ crimelake.month_filter() }}
)

{% for g in ['all_crime', 'asb', 'violence', 'theft', 'weapons'] %}
select
    h3_cell,
    force,
    month,
    '{{ g }}' as forecast_group,
    cast(count(*) as bigint) as incident_count,
    cast(sum(case when knife_enabled then 1 else 0 end) as bigint) as knife_enabled_count
from incidents
where in_{{ g }}
group by h3_cell, force, month
{% if not loop.last %}union all{% endif %}
{% endfor %}
