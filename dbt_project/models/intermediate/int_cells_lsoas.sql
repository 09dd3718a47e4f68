{{ config(materialized='table') }}

{#- The LSOA of an H3 cell, learned from the data: data.police.uk rows carry both, so each cell takes the LSOA its
    rows named in the first month it appears (the one named most that month; ties to the lowest code). Points from
    sources without an LSOA (force exports, council reports) reach their area through this lookup.

    Fixed once first named: later months never change it. `lsoa_month` is the month that named it (later than the
    cell's first month when the cell was first seen in a source without LSOAs), so a forecast made at an origin
    uses the LSOA only when it was known then (no hindsight), and a backtest origin's inputs stay the same as
    history grows. -#}

with first_month as (
    select h3_cell, min(month) as month
    from {{ ref('int_cell_lsoa_months') }}
    group by h3_cell
),
ranked as (
    select
        pairs.h3_cell, pairs.lsoa_code, pairs.month as lsoa_month, pairs.rows_seen,
        row_number() over (partition by pairs.h3_cell order by pairs.rows_seen desc, pairs.lsoa_code) as rn
    from {{ ref('int_cell_lsoa_months') }} as pairs
    inner join first_month on pairs.h3_cell = first_month.h3_cell and pairs.month = first_month.month
)
select h3_cell, lsoa_code, lsoa_month, rows_seen
from ranked
where rn = 1
