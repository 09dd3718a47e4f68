{{ config(materialized='incremental', on_schema_change='fail', **crimelake.monthly_incremental()) }}

{#- Stop and search per H3 cell and month, aggregated: no row describes a person. Incremental by month. -#}

select
    h3_cell,
    force,
    month,
    cast(count(*) as bigint) as searches,
    cast(sum(case when object_of_search in ('Offensive weapons', 'Firearms', 'Anything to threaten or harm anyone')
                  then 1 else 0 end) as bigint) as searches_for_weapons,
    cast(sum(case when object_of_search = 'Controlled drugs' then 1 else 0 end) as bigint) as searches_for_drugs,
    cast(sum(case when outcome = 'Arrest' then 1 else 0 end) as bigint) as arrests,
    cast(sum(case when outcome_linked_to_object_of_search then 1 else 0 end) as bigint) as outcomes_linked_to_object
from {{ ref('stg_police_uk__stop_and_searches') }}
where h3_cell is not null and {{ crimelake.month_filter() }}
group by h3_cell, force, month
