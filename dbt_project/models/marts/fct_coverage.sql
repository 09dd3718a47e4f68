{{ config(materialized='table') }}

{#- The coverage ledger: one row per incident source, force and expected month, saying whether the month arrived
    whole. Expected months of a (source, force) run from its first delivered month to the source's latest month;
    one with no rows is missing. Volumes are compared with the force's own trailing median over its previous
    delivered months (var coverage_trailing_months), overall and per category. Rules and thresholds are in
    _marts__models.yml; every threshold is a var. -#}

{%- set trailing = var('coverage_trailing_months') | int -%}
{%- set stable = var('coverage_stable_months') | int -%}
{%- set band = var('coverage_stable_band') | float -%}

with arrived as (
    select * from {{ ref('int_incidents_arrived') }}
),

delivered as (
    select source, force, month,
           sum(incidents) as row_count, sum(geocoded) as geocoded, sum(with_lsoa) as with_lsoa
    from arrived
    group by source, force, month
),

source_ends as (
    select source, max({{ crimelake.month_index('month') }}) as last_index
    from delivered
    group by source
),

spans as (
    select delivered.source, delivered.force,
           min({{ crimelake.month_index('delivered.month') }}) as first_index,
           max(source_ends.last_index) as last_index
    from delivered
    inner join source_ends on delivered.source = source_ends.source
    group by delivered.source, delivered.force
),

spine as (
    {{ dbt.generate_series(1200) }}
),

expected as (
    select spans.source, spans.force,
           {{ crimelake.month_label('spans.first_index + spine.generated_number - 1') }} as month
    from spans
    inner join spine on spine.generated_number <= spans.last_index - spans.first_index + 1
),

history as (
    select source, force, month, row_count, geocoded, with_lsoa,
           {{ crimelake.median('row_count') }} over (
               partition by source, force order by month
               rows between {{ trailing }} preceding and 1 preceding) as trailing_median_rows
    from delivered
),

ratios as (
    select history.*,
           case when trailing_median_rows > 0
                then cast(row_count as double) / trailing_median_rows end as volume_ratio
    from history
),

stability as (
    select ratios.*,
           sum(case when volume_ratio between {{ 1.0 / band }} and {{ band }} then 1 else 0 end) over (
               partition by source, force order by month
               rows between {{ stable }} preceding and 1 preceding) as stable_before
    from ratios
),

force_categories as (
    select distinct source, force, category_slug from arrived where category_slug is not null
),

category_months as (
    -- A category absent from a delivered month counted zero that month.
    select force_categories.source, force_categories.force, delivered.month, force_categories.category_slug,
           coalesce(arrived.incidents, 0) as incidents
    from force_categories
    inner join delivered
        on force_categories.source = delivered.source and force_categories.force = delivered.force
    left join arrived
        on arrived.source = force_categories.source and arrived.force = force_categories.force
       and arrived.month = delivered.month and arrived.category_slug = force_categories.category_slug
),

category_history as (
    select category_months.*,
           {{ crimelake.median('incidents') }} over (
               partition by source, force, category_slug order by month
               rows between {{ trailing }} preceding and 1 preceding) as trailing_median
    from category_months
),

category_drops as (
    select source, force, month,
           {{ dbt.listagg(dbt.concat(["'category_drop:'", 'category_slug']), "','", 'order by category_slug') }}
               as drop_flags
    from category_history
    where trailing_median >= {{ var('coverage_category_min_median') }}
      and incidents < {{ var('coverage_category_drop_ratio') }} * trailing_median
    group by source, force, month
),

ledger as (
    select
        expected.source,
        expected.force,
        expected.month,
        stability.row_count,
        stability.geocoded,
        stability.with_lsoa,
        stability.trailing_median_rows,
        stability.volume_ratio,
        stability.row_count is null as is_missing,
        coalesce(stability.volume_ratio < {{ var('coverage_partial_ratio') }}, false) as is_partial,
        coalesce((stability.volume_ratio > {{ var('coverage_break_high') }}
                  or stability.volume_ratio < {{ var('coverage_break_low') }})
                 and stability.stable_before = {{ stable }}, false) as is_series_break,
        category_drops.drop_flags,
        case when stability.row_count > 0
             then cast(stability.geocoded as double) / stability.row_count end as geocoded_share,
        case when stability.row_count > 0
             then cast(stability.with_lsoa as double) / stability.row_count end as lsoa_share
    from expected
    left join stability
        on expected.source = stability.source and expected.force = stability.force
       and expected.month = stability.month
    left join category_drops
        on expected.source = category_drops.source and expected.force = category_drops.force
       and expected.month = category_drops.month
),

flagged as (
    select ledger.*,
           {{ dbt.concat([
               "case when is_missing then ',missing' else '' end",
               "case when is_partial then ',partial' else '' end",
               "case when is_series_break then ',series_break' else '' end",
               "case when drop_flags is not null then " ~ dbt.concat(["','", "drop_flags"]) ~ " else '' end",
               "case when geocoded_share < " ~ var('coverage_min_geocoded_share') ~ " then ',low_geocoding' else '' end",
           ]) }} as flag_list
    from ledger
)

select
    source,
    force,
    month,
    case when is_missing then 'missing' when is_partial then 'partial' else 'complete' end as status,
    cast(coalesce(row_count, 0) as bigint) as rows,
    geocoded_share,
    lsoa_share,
    cast(trailing_median_rows as double) as trailing_median_rows,
    volume_ratio,
    case when flag_list = '' then '' else substring(flag_list, 2) end as flags
from flagged
