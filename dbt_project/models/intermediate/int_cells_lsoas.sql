{{ config(materialized='table') }}

{#- The LSOA of an H3 cell, learned from the data: data.police.uk rows carry both, so each cell takes the LSOA its
    rows name most often (ties to the lowest code). Points from sources without an LSOA (force exports, council
    reports) reach their area through this lookup. -#}

with pairs as (
    select h3_cell, lsoa_code, sum(rows_seen) as n
    from {{ ref('int_cell_lsoa_months') }}
    group by h3_cell, lsoa_code
),

ranked as (
    select
        h3_cell, lsoa_code, n,
        row_number() over (partition by h3_cell order by n desc, lsoa_code) as rn
    from pairs
)

select h3_cell, lsoa_code, n as rows_seen
from ranked
where rn = 1
