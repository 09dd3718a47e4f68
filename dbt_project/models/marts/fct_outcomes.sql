{{ config(materialized='incremental', on_schema_change='fail', **crimelake.monthly_incremental('outcome_month')) }}

{#- Outcomes linked to the crimes they close, where data.police.uk links them (by Crime ID). An outcome whose
    crime was recorded before the loaded window links to nothing and says so.
    Incremental by outcome month: a month's links are made when that month is built. -#}

with outcomes as (
    select * from {{ ref('stg_police_uk__outcomes') }}
    where {{ crimelake.month_filter() }}
),

crimes as (
    -- Superseded rows included: the link is to the data.police.uk record, whichever source won the count.
    select source_reference as crime_id, record_id as incident_record_id, month as crime_month, category_slug, h3_cell,
           row_number() over (partition by source_reference order by month, record_id) as rn
    from {{ ref('int_incidents_deduplicated') }}
    where source = 'police_uk' and source_reference is not null
      and source_reference in (select crime_id from outcomes)
)

select
    outcomes.record_id as outcome_id,
    outcomes.crime_id,
    outcomes.month as outcome_month,
    outcomes.force,
    outcomes.outcome_type,
    crimes.incident_record_id,
    crimes.crime_month,
    crimes.category_slug,
    coalesce(crimes.h3_cell, outcomes.h3_cell) as h3_cell,
    crimes.crime_id is not null as is_linked
from outcomes
left join crimes on outcomes.crime_id = crimes.crime_id and crimes.rn = 1
