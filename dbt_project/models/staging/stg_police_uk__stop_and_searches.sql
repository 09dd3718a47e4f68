{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

with source as (
    select * from {{ source('police_uk', 'stop_and_search') }}
    where {{ crimelake.month_filter() }}
)

select
    {{ crimelake.record_id() }} as record_id,
    month,
    force,
    date as searched_at,
    type as search_type,
    part_of_a_policing_operation,
    legislation,
    object_of_search,
    outcome,
    outcome_linked_to_object_of_search,
    -- Personal characteristics stay in staging for the fairness audit; marts only ever aggregate them.
    gender,
    age_range,
    officer_defined_ethnicity,
    wgs84_lon as longitude,
    wgs84_lat as latitude,
    h3_cell,
    _source_file,
    _source_sha256,
    _source_line,
    _contract,
    _ingest_run_id
from source
