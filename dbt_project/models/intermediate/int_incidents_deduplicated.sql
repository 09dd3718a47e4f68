{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='month') }}

{#- One record per incident. A force that sends its own records-system export for a month sends the same crimes
    data.police.uk publishes for it, from the same system: the export wins (exact location and date, the
    knife-enabled flag) and that force-month's data.police.uk crimes are marked superseded, kept here with the
    reason rather than dropped. Anti-social behaviour is not in records-system exports, so its data.police.uk
    rows always stay. -#}

with incidents as (
    select * from {{ ref('int_incidents_unioned') }}
    where {{ crimelake.month_filter() }}
),

export_months as (
    select distinct force, month
    from incidents
    where source in ('force_rms_ho', 'force_rms_text')
),

flagged as (
    select
        incidents.*,
        (
            incidents.source = 'police_uk'
            and coalesce(incidents.category_slug, '') <> 'anti-social-behaviour'
            and export_months.force is not null
        ) as is_superseded
    from incidents
    left join export_months
        on incidents.force = export_months.force and incidents.month = export_months.month
)

select
    flagged.*,
    case when is_superseded then 'force records-system export received for this force and month' end
        as superseded_reason
from flagged
