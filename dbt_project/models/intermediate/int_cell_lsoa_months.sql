{{ config(materialized='incremental', **crimelake.monthly_incremental()) }}

{#- How often each month's data.police.uk rows name each (H3 cell, LSOA) pair: the small aggregate int_cells_lsoas
    ranks, so learning a cell's LSOA never rescans every street row. -#}

select h3_cell, lsoa_code, month, count(*) as rows_seen
from {{ ref('stg_police_uk__street_crimes') }}
where h3_cell is not null and lsoa_code is not null and {{ crimelake.month_filter() }}
group by h3_cell, lsoa_code, month
