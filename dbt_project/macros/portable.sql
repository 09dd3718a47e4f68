{#- Cross-database helpers where dbt ships none, dispatched per adapter so models run on DuckDB and Spark. -#}

{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'crimelake')(expr, pattern)) }}
{%- endmacro %}
{% macro default__regex_matches(expr, pattern) -%} regexp_matches({{ expr }}, '{{ pattern }}') {%- endmacro %}
{% macro spark__regex_matches(expr, pattern) -%} ({{ expr }} rlike '{{ pattern }}') {%- endmacro %}

{% macro month_filter(column='month') -%}
    {#- Restrict to the month Dagster is rebuilding (var month), or nothing on a full build. -#}
    {%- if var('month', '') -%} {{ column }} = '{{ var("month") }}' {%- else -%} true {%- endif -%}
{%- endmacro %}
