{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

{#- Every incident-like record from every source, in one shape: the conformed definitions of DESIGN §3. -#}

with street as (
    select
        record_id, 'police_uk' as source, force, month,
        cast(null as date) as occurred_date,
        source_label, category_slug,
        cast(null as boolean) as knife_enabled,
        longitude, latitude, h3_cell, lsoa_code,
        crime_id as source_reference,
        _source_file, _source_sha256, _source_line, _contract, _ingest_run_id
    from {{ ref('stg_police_uk__street_crimes') }}
    where {{ crimelake.month_filter() }}
),

rms_codes as (
    select
        record_id, 'force_rms_ho' as source, force, month,
        occurred_date,
        source_label, category_slug,
        knife_enabled,
        longitude, latitude, h3_cell,
        cast(null as {{ dbt.type_string() }}) as lsoa_code,
        crime_ref as source_reference,
        _source_file, _source_sha256, _source_line, _contract, _ingest_run_id
    from {{ ref('stg_force_rms_ho__crimes') }}
    where {{ crimelake.month_filter() }}
),

rms_text as (
    select
        record_id, 'force_rms_text' as source, force, month,
        occurred_date,
        source_label, category_slug,
        knife_enabled,
        longitude, latitude, h3_cell,
        cast(null as {{ dbt.type_string() }}) as lsoa_code,
        incident_number as source_reference,
        _source_file, _source_sha256, _source_line, _contract, _ingest_run_id
    from {{ ref('stg_force_rms_text__crimes') }}
    where {{ crimelake.month_filter() }}
)

select * from street
union all
select * from rms_codes
union all
select * from rms_text
