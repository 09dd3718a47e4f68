{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

{#- One record per incident. A force that sends its own records-system export for a month sends the same crimes
    data.police.uk publishes for it, from the same system. The export wins (exact location and date, the
    knife-enabled flag) when it is complete: at least 90% as many crimes as data.police.uk has for that force and
    month. A shorter export (truncated, partial) loses to data.police.uk instead, so a broken delivery never
    removes crimes. The losing side's rows stay here, marked superseded with the reason. Anti-social behaviour is
    not in records-system exports, so its data.police.uk rows are never superseded. -#}

with incidents as (
    select * from {{ ref('int_incidents_unioned') }}
    where {{ crimelake.month_filter() }}
),

crimes_per_side as (
    select
        force,
        month,
        sum(case when source = 'police_uk' then 1 else 0 end) as police_uk_crimes,
        sum(case when source <> 'police_uk' then 1 else 0 end) as export_crimes
    from incidents
    where coalesce(category_slug, '') <> 'anti-social-behaviour'
    group by force, month
),

winners as (
    select
        force,
        month,
        case when export_crimes >= 0.9 * police_uk_crimes then 'force_export' else 'police_uk' end as winner
    from crimes_per_side
    where export_crimes > 0
),

flagged as (
    select
        incidents.*,
        coalesce(
            (incidents.source = 'police_uk' and coalesce(incidents.category_slug, '') <> 'anti-social-behaviour'
                and winners.winner = 'force_export')
            or (incidents.source <> 'police_uk' and winners.winner = 'police_uk'),
            false
        ) as is_superseded,
        winners.winner
    from incidents
    left join winners on incidents.force = winners.force and incidents.month = winners.month
)

select
    flagged.record_id, flagged.source, flagged.force, flagged.month, flagged.occurred_date, flagged.source_label,
    flagged.category_slug, flagged.knife_enabled, flagged.longitude, flagged.latitude, flagged.h3_cell,
    flagged.lsoa_code, flagged.source_reference, flagged._source_file, flagged._source_sha256, flagged._source_line,
    flagged._contract, flagged._ingest_run_id,
    flagged.is_superseded,
    case
        when flagged.is_superseded and flagged.winner = 'force_export'
            then 'force records-system export received for this force and month'
        when flagged.is_superseded
            then 'force export for this force and month is incomplete (under 90% of data.police.uk crimes)'
    end as superseded_reason
from flagged
