{{ config(meta={'dagster': {'ref': {'name': 'fct_incidents'}}}) }}
{#- Every bronze incident row is either conformed into fct_incidents or accounted for: superseded by a force
    export, or left out for an unmapped label (which assert_every_source_label_mapped reports). -#}
{#- The months the run built (crimelake.checked_months); later months are checked by the run that builds them. -#}
{%- set upto = crimelake.checked_months() -%}
with bronze as (
    select 'police_uk' as source, count(*) as n from {{ source('police_uk', 'street') }} where {{ upto }}
    union all select 'force_rms_ho', count(*) from {{ source('force_rms_ho', 'crimes') }} where {{ upto }}
    union all select 'force_rms_text', count(*) from {{ source('force_rms_text', 'crimes') }} where {{ upto }}
),
dedup as (
    select source,
           count(*) as n,
           sum(case when is_superseded then 1 else 0 end) as superseded,
           sum(case when not is_superseded and category_slug is null then 1 else 0 end) as unmapped
    from {{ ref('int_incidents_deduplicated') }}
    where {{ upto }}
    group by source
),
facts as (
    select source, count(*) as n from {{ ref('fct_incidents') }} where {{ upto }} group by source
)
select bronze.source, bronze.n as bronze_rows, dedup.n as conformed_rows, facts.n as fact_rows,
       dedup.superseded, dedup.unmapped
from bronze
left join dedup on bronze.source = dedup.source
left join facts on bronze.source = facts.source
where bronze.n <> coalesce(dedup.n, 0)
   or coalesce(dedup.n, 0) <> coalesce(facts.n, 0) + coalesce(dedup.superseded, 0) + coalesce(dedup.unmapped, 0)
