{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

{#- What arrived, per incident source, force, month and category: conformed rows before deduplication or any cell
    filter, with how many carry a cell and an LSOA as the source delivered them (nothing learned from other months,
    so a month's row never depends on the order months were built in). The small aggregate the coverage ledger is
    built from. -#}

select
    incidents.source,
    incidents.force,
    incidents.month,
    incidents.category_slug,
    cast(count(*) as bigint) as incidents,
    cast(sum(case when incidents.h3_cell is not null then 1 else 0 end) as bigint) as geocoded,
    cast(sum(case when incidents.lsoa_code is not null then 1 else 0 end) as bigint) as with_lsoa
from {{ ref('int_incidents_unioned') }} as incidents
where {{ crimelake.month_filter('incidents.month') }}
group by incidents.source, incidents.force, incidents.month, incidents.category_slug
