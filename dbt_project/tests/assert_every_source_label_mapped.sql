{{ config(meta={'dagster': {'ref': {'name': 'int_incidents_unioned'}}}) }}
{#- Every label a source used maps onto a shared category through its contract. A row returned here names the
    label, its source and the file and line it came from. Reported on the conformed model every label feeds; reads
    the months the run built (crimelake.checked_months). -#}
-- depends_on: {{ ref('int_incidents_unioned') }}
select 'police_uk' as source, source_label, _source_file, _source_line
from {{ ref('stg_police_uk__street_crimes') }} where category_slug is null and {{ crimelake.checked_months() }}
union all
select 'force_rms_ho', source_label, _source_file, _source_line
from {{ ref('stg_force_rms_ho__crimes') }} where category_slug is null and {{ crimelake.checked_months() }}
union all
select 'force_rms_text', source_label, _source_file, _source_line
from {{ ref('stg_force_rms_text__crimes') }} where category_slug is null and {{ crimelake.checked_months() }}
union all
select 'la_reports', source_label, _source_file, _source_line
from {{ ref('stg_la_reports__reports') }} where category_slug is null and {{ crimelake.checked_months() }}
