{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

with source as (
    select * from {{ source('police_uk', 'street') }}
    where {{ crimelake.month_filter() }}
),

labels as (
    {{ crimelake.source_labels('police_uk', 'street') }}
)

select
    {{ crimelake.record_id() }} as record_id,
    source.crime_id,
    source.month,
    source.force,
    source.reported_by,
    source.falls_within,
    source.wgs84_lon as longitude,
    source.wgs84_lat as latitude,
    source.h3_cell,
    source.location,
    source.lsoa_code,
    source.lsoa_name,
    source.crime_type as source_label,
    labels.category_slug,
    source.last_outcome_category,
    source._source_file,
    source._source_sha256,
    source._source_line,
    source._contract,
    source._ingest_run_id
from source
left join labels on source.crime_type = labels.source_label
