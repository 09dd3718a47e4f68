{{ config(materialized='table') }}

{#- An intervention may be logged again in a later delivery (a correction, an end date once it stops): the latest
    delivery month counts, and within a month the latest ingest. -#}
with source as (
    select * from {{ source('interventions', 'log') }}
),

ranked as (
    select
        *,
        row_number() over (partition by intervention_id order by month desc, _ingested_at desc) as delivery_rank
    from source
)

select
    intervention_id,
    kind,
    area_type,
    area,
    force,
    start_date,
    end_date,
    agency,
    target_groups,
    description,
    month as delivered_month,
    _source_file,
    _source_sha256,
    _source_line,
    _contract,
    _ingest_run_id
from ranked
where delivery_rank = 1
