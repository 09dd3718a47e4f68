{{ config(materialized='incremental', on_schema_change='fail', **crimelake.monthly_incremental()) }}

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
    -- Feedback-loop guard: police-discovered offences (drugs, possession of weapons, public order) mostly record
    -- where police looked, so by default they stay out of the all-crime target (var
    -- all_crime_includes_police_discovered).
    (categories.in_all_crime
        and ({{ 'true' if var('all_crime_includes_police_discovered') else 'not categories.police_discovered' }}))
        as in_all_crime,
    categories.in_asb,
    categories.in_violence,
    categories.in_theft,
    -- Weapons: where a source flags knife-enabled offences, the victim-reported knife-enabled offences count and
    -- possession offences found by patrols do not (var weapons_possession_where_flagged); elsewhere possession
    -- of weapons is the only signal there is.
    case
        when incidents.knife_enabled is not null
            then (incidents.knife_enabled and not categories.police_discovered)
                {% if var('weapons_possession_where_flagged') %} or categories.in_weapons{% endif %}
        else categories.in_weapons
    end as in_weapons,
    incidents.knife_enabled,
    incidents.longitude,
    incidents.latitude,
    incidents.h3_cell,
    -- The source's own LSOA: a cell's LSOA learned from every month lives in dim_cells, so an incremental month
    -- never depends on the months built before it.
    incidents.lsoa_code,
    incidents.source_label,
    incidents._source_file,
    incidents._source_sha256,
    incidents._source_line,
    incidents._contract,
    incidents._ingest_run_id
from incidents
inner join categories on incidents.category_slug = categories.category_slug
