{{ config(meta={'dagster': {'ref': {'name': 'fct_incidents'}}}) }}
{#- No force-month counts the same crimes from two sources: where a force export exists, fct_incidents holds no
    data.police.uk crime (other than anti-social behaviour) for that force and month, in the months the run
    built. -#}
with by_source as (
    select force, month,
           sum(case when source = 'police_uk' and category_slug <> 'anti-social-behaviour' then 1 else 0 end) as police_uk_crimes,
           sum(case when source <> 'police_uk' then 1 else 0 end) as export_crimes
    from {{ ref('fct_incidents') }}
    where {{ crimelake.checked_months() }}
    group by force, month
)
select * from by_source where police_uk_crimes > 0 and export_crimes > 0
