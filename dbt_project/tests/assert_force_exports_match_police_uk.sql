{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'int_incidents_reconciled'}}}) }}
{#- The deduplication rule trusts that a force export and data.police.uk describe the same crimes. Warn where,
    for a force, month and category with at least 20 crimes, the two counts differ by more than 10%. -#}
select
    *,
    force_export_count - police_uk_count as difference,
    case when force_export_count > police_uk_count
         then 'the force export holds more: look for duplicated export rows or a label mapped wider than data.police.uk'
         else 'data.police.uk holds more: look for missing export rows, an export cut off early or unmapped labels'
    end as where_to_look
from {{ ref('int_incidents_reconciled') }}
where greatest(police_uk_count, force_export_count) >= 20
  and abs(police_uk_count - force_export_count) > 0.1 * greatest(police_uk_count, force_export_count)
  and {{ crimelake.checked_months() }}
