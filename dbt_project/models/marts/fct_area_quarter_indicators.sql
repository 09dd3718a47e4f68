{{ config(materialized='incremental', on_schema_change='fail', **crimelake.quarterly_incremental()) }}

{#- Area level (LSOA x quarter): recorded incidents by forecast group, council reports by kind, and children's
    social care indicators. Social care is only ever joined here, at area level; counts suppressed at source stay
    suppressed (null, with the number of suppressed values counted). A run rebuilds the quarters of its months
    (crimelake.quarterly_incremental), so its cost is a quarter's whatever the history. -#}

with incidents as (
    -- The source's LSOA, else the cell's as it was known in the incident's month (int_cells_lsoas.lsoa_month):
    -- an LSOA first named later never reaches back into an earlier quarter, so a quarter's figures do not move
    -- as months arrive (no hindsight for a forecast made then, and backtest origins stay reusable).
    select
        coalesce(facts.lsoa_code, cell_lsoas.lsoa_code) as lsoa_code,
        {{ crimelake.quarter_of('facts.month') }} as quarter,
        sum(case when facts.in_all_crime then 1 else 0 end) as incidents_all_crime,
        sum(case when facts.in_asb then 1 else 0 end) as incidents_asb,
        sum(case when facts.in_violence then 1 else 0 end) as incidents_violence,
        sum(case when facts.in_theft then 1 else 0 end) as incidents_theft,
        sum(case when facts.in_weapons then 1 else 0 end) as incidents_weapons
    from {{ ref('fct_incidents') }} as facts
    left join {{ ref('int_cells_lsoas') }} as cell_lsoas
        on facts.h3_cell = cell_lsoas.h3_cell and cell_lsoas.lsoa_month <= facts.month
    where coalesce(facts.lsoa_code, cell_lsoas.lsoa_code) is not null
      and {{ crimelake.quarter_month_filter('facts.month') }}
    group by 1, 2
),

reports as (
    select
        cell_lsoas.lsoa_code,
        {{ crimelake.quarter_of('reports.month') }} as quarter,
        count(*) as council_reports,
        sum(case when reports.report_kind = 'environmental' then 1 else 0 end) as council_reports_environmental,
        sum(case when reports.report_kind = 'nuisance' then 1 else 0 end) as council_reports_nuisance,
        sum(case when reports.report_kind = 'personal' then 1 else 0 end) as council_reports_personal
    from {{ ref('stg_la_reports__reports') }} as reports
    -- A report's area is its cell's LSOA as known in the report's month (as for incidents above).
    inner join {{ ref('int_cells_lsoas') }} as cell_lsoas
        on reports.h3_cell = cell_lsoas.h3_cell and cell_lsoas.lsoa_month <= reports.month
    where {{ crimelake.quarter_month_filter('reports.month') }}
    group by 1, 2
),

care as (
    select
        lsoa_code,
        quarter,
        max(local_authority_code) as local_authority_code,
        sum(case when indicator = 'children_in_need_referrals' then indicator_count end) as children_in_need_referrals,
        sum(case when indicator = 'child_protection_plans_started' then indicator_count end)
            as child_protection_plans_started,
        sum(case when indicator = 'looked_after_children_started' then indicator_count end)
            as looked_after_children_started,
        sum(case when indicator = 'early_help_assessments' then indicator_count end) as early_help_assessments,
        sum(case when is_suppressed then 1 else 0 end) as social_care_values_suppressed
    from {{ ref('stg_social_care__indicators') }}
    where {{ crimelake.quarter_month_filter('month') }}
    group by lsoa_code, quarter
),

areas as (
    select lsoa_code, quarter from incidents
    union
    select lsoa_code, quarter from reports
    union
    select lsoa_code, quarter from care
)

select
    areas.lsoa_code,
    areas.quarter,
    care.local_authority_code,
    cast(coalesce(incidents.incidents_all_crime, 0) as bigint) as incidents_all_crime,
    cast(coalesce(incidents.incidents_asb, 0) as bigint) as incidents_asb,
    cast(coalesce(incidents.incidents_violence, 0) as bigint) as incidents_violence,
    cast(coalesce(incidents.incidents_theft, 0) as bigint) as incidents_theft,
    cast(coalesce(incidents.incidents_weapons, 0) as bigint) as incidents_weapons,
    cast(coalesce(reports.council_reports, 0) as bigint) as council_reports,
    cast(coalesce(reports.council_reports_environmental, 0) as bigint) as council_reports_environmental,
    cast(coalesce(reports.council_reports_nuisance, 0) as bigint) as council_reports_nuisance,
    cast(coalesce(reports.council_reports_personal, 0) as bigint) as council_reports_personal,
    cast(care.children_in_need_referrals as bigint) as children_in_need_referrals,
    cast(care.child_protection_plans_started as bigint) as child_protection_plans_started,
    cast(care.looked_after_children_started as bigint) as looked_after_children_started,
    cast(care.early_help_assessments as bigint) as early_help_assessments,
    cast(coalesce(care.social_care_values_suppressed, 0) as bigint) as social_care_values_suppressed
from areas
left join incidents on areas.lsoa_code = incidents.lsoa_code and areas.quarter = incidents.quarter
left join reports on areas.lsoa_code = reports.lsoa_code and areas.quarter = reports.quarter
left join care on areas.lsoa_code = care.lsoa_code and areas.quarter = care.quarter
