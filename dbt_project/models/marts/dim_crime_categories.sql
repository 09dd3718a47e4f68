{{ config(materialized='table') }}

{#- The shared taxonomy and, for each category, every source label that maps onto it. Both seeds are generated
    from the data contracts (python -m data_contracts.seeds), so this is the contracts' word, not a copy. One row
    per category and source label; a category no source label maps onto still has one row. -#}

with categories as (
    select * from {{ ref('crime_categories') }}
),

labels as (
    select * from {{ ref('contract_labels') }}
)

select
    {{ dbt.hash(dbt.concat(["categories.category_slug", "'|'", "coalesce(labels.contract, '')", "'|'",
                            "coalesce(labels.source_label, '')"])) }} as category_label_id,
    categories.category_slug,
    categories.category_name,
    categories.police_discovered,
    categories.in_all_crime,
    categories.in_asb,
    categories.in_violence,
    categories.in_theft,
    categories.in_weapons,
    labels.source,
    labels.entity,
    labels.contract,
    labels.source_column,
    labels.source_label
from categories
left join labels on categories.category_slug = labels.category_slug
