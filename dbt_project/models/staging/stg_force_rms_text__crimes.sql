{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

with source as (
    select * from {{ source('force_rms_text', 'crimes') }}
    where {{ crimelake.month_filter() }}
),

labels as (
    {{ crimelake.source_labels('force_rms_text', 'crimes') }}
)

select
    {{ crimelake.record_id() }} as record_id,
    source.incident_number,
    source.month,
    source.force,
    source.reported_at,
    cast(source.reported_at as date) as occurred_date,
    source.offence as source_label,
    labels.category_slug,
    source.offence_subgroup,
    source.knife_enabled,
    source.wgs84_lon as longitude,
    source.wgs84_lat as latitude,
    source.h3_cell,
    source.postcode_district,
    source._source_file,
    source._source_sha256,
    source._source_line,
    source._contract,
    source._ingest_run_id
from source
left join labels on source.offence = labels.source_label
