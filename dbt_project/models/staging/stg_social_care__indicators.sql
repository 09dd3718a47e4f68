{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

with source as (
    select * from {{ source('social_care', 'indicators') }}
    where {{ crimelake.month_filter() }}
)

select
    {{ crimelake.record_id() }} as record_id,
    lsoa_code,
    lsoa_name,
    local_authority_code,
    authority,
    quarter,
    month,
    indicator,
    count as indicator_count,
    count_suppressed as is_suppressed,
    _source_file,
    _source_sha256,
    _source_line,
    _contract,
    _ingest_run_id
from source
