{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

{#- Per force, month and category: what data.police.uk published beside what the force's own export holds.
    The deduplication rule assumes they describe the same crimes; this is where a gap would show. -#}

with dedup as (
    select * from {{ ref('int_incidents_deduplicated') }}
    where category_slug is not null and category_slug <> 'anti-social-behaviour' and {{ crimelake.month_filter() }}
),

export_months as (
    select distinct force, month from dedup where source <> 'police_uk'
)

select
    dedup.force,
    dedup.month,
    dedup.category_slug,
    sum(case when dedup.source = 'police_uk' then 1 else 0 end) as police_uk_count,
    sum(case when dedup.source <> 'police_uk' then 1 else 0 end) as force_export_count
from dedup
inner join export_months on dedup.force = export_months.force and dedup.month = export_months.month
group by dedup.force, dedup.month, dedup.category_slug
