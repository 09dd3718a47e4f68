{#- Generic tests the project needs; the dbt package hub is unreachable, so they live here. -#}

{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test expression_is_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}

{% test within_england_and_wales(model, lon_column='longitude', lat_column='latitude') %}
{#- The same generous box the ingest layer applies: a point outside it cannot belong to a force of
    England and Wales. -#}
select * from {{ model }}
where {{ lon_column }} is not null
  and not ({{ lon_column }} between -6.5 and 1.9 and {{ lat_column }} between 49.8 and 55.9)
{% endtest %}

{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
select * from {{ model }}
where {{ column_name }} is not null
  and (
    {% if min_value is not none %}{{ column_name }} < {{ min_value }}{% else %}false{% endif %}
    or {% if max_value is not none %}{{ column_name }} > {{ max_value }}{% else %}false{% endif %}
  )
{% endtest %}

{% test is_h3_cell(model, column_name) %}
{#- H3 cells are 15 hexadecimal characters starting with 8 (cell mode). -#}
select * from {{ model }}
where {{ column_name }} is not null
  and not {{ crimelake.regex_matches(column_name, '^8[0-9a-f]{14}$') }}
{% endtest %}
