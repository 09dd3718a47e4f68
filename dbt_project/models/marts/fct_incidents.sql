{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='month',
          on_schema_change='fail') }}

{#- One row per conformed incident, every source, each counted once. -#}

with incidents as (
    select * from {{ ref('int_incidents_deduplicated') }}
    where not is_superseded and {{ crimelake.month_filter() }}
),

categories as (
    select * from {{ ref('crime_categories') }}
)

select
    incidents.record_id as incident_id,
    incidents.source,
    incidents.force,
    incidents.month,
    incidents.occurred_date,
    incidents.category_slug,
    categories.category_name,
    categories.police_discovered,
    categories.in_all_crime,
    categories.in_asb,
    categories.in_violence,
    categories.in_theft,
    -- Weapons: possession offences, plus any offence a source flags as knife-enabled.
    (categories.in_weapons or coalesce(incidents.knife_enabled, false)) as in_weapons,
    incidents.knife_enabled,
    incidents.longitude,
    incidents.latitude,
    incidents.h3_cell,
    coalesce(incidents.lsoa_code, cell_lsoas.lsoa_code) as lsoa_code,
    incidents.source_label,
    incidents._source_file,
    incidents._source_sha256,
    incidents._source_line,
    incidents._contract,
    incidents._ingest_run_id
from incidents
inner join categories on incidents.category_slug = categories.category_slug
left join {{ ref('int_cells_lsoas') }} as cell_lsoas on incidents.h3_cell = cell_lsoas.h3_cell
