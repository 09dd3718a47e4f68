{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

with source as (
    select * from {{ source('force_rms_ho', 'crimes') }}
    where {{ crimelake.month_filter() }}
),

labels as (
    {{ crimelake.source_labels('force_rms_ho', 'crimes') }}
)

select
    {{ crimelake.record_id() }} as record_id,
    source.crime_ref,
    source.month,
    source.force,
    source.recorded_date,
    -- When the offence was committed is what places it in time; fall back to the date it was recorded.
    coalesce(source.committed_date, source.recorded_date) as occurred_date,
    source.ho_code as source_label,
    labels.category_slug,
    source.offence_desc,
    source.knife_enabled,
    source.wgs84_lon as longitude,
    source.wgs84_lat as latitude,
    source.h3_cell,
    source.beat,
    source.ward_name,
    source.status,
    source._source_file,
    source._source_sha256,
    source._source_line,
    source._contract,
    source._ingest_run_id
from source
left join labels on source.ho_code = labels.source_label
