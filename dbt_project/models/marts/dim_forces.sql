{{ config(materialized='table') }}

{#- The 43 territorial forces of England and Wales and British Transport Police, with what each supplies. -#}

with forces as (
    select * from {{ ref('forces') }}
),

supplied as (
    select
        force,
        min(month) as first_month,
        max(month) as last_month,
        count(*) as incidents,
        max(case when source = 'police_uk' then 1 else 0 end) as has_police_uk,
        max(case when source <> 'police_uk' then 1 else 0 end) as has_force_export
    from {{ ref('fct_incidents') }}
    group by force
)

select
    forces.force_slug,
    forces.force_name,
    forces.country,
    supplied.first_month,
    supplied.last_month,
    coalesce(supplied.incidents, 0) as incidents,
    coalesce(supplied.has_police_uk, 0) = 1 as supplies_police_uk,
    coalesce(supplied.has_force_export, 0) = 1 as supplies_force_export
from forces
left join supplied on forces.force_slug = supplied.force
