{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

with source as (
    select * from {{ source('la_reports', 'reports') }}
    where {{ crimelake.month_filter() }}
),

labels as (
    {{ crimelake.source_labels('la_reports', 'reports') }}
),

kinds as (
    select report_category, report_kind from {{ ref('report_kinds') }}
)

select
    {{ crimelake.record_id() }} as record_id,
    source.case_reference,
    source.month,
    source.authority,
    source.local_authority,
    source.local_authority_code,
    source.date_reported as reported_at,
    source.report_category as source_label,
    labels.category_slug,
    kinds.report_kind,
    source.report_subcategory,
    source.wgs84_lon as longitude,
    source.wgs84_lat as latitude,
    source.h3_cell,
    source.ward_code,
    source.status,
    source._source_file,
    source._source_sha256,
    source._source_line,
    source._contract,
    source._ingest_run_id
from source
left join labels on source.report_category = labels.source_label
left join kinds on source.report_category = kinds.report_category
