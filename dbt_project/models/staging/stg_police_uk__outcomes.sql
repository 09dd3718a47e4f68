{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

with source as (
    select * from {{ source('police_uk', 'outcomes') }}
    where {{ crimelake.month_filter() }}
)

select
    {{ crimelake.record_id() }} as record_id,
    crime_id,
    month,
    force,
    outcome_type,
    wgs84_lon as longitude,
    wgs84_lat as latitude,
    h3_cell,
    lsoa_code,
    _source_file,
    _source_sha256,
    _source_line,
    _contract,
    _ingest_run_id
from source
