{#- Which months a run's tests read. A run that rebuilds months checks the months it wrote, not the whole
    history, so a month's checks cost the same at month 36 as at month 12. The range is check_from (the run's
    first month; a long run builds in chunks and tests with the last one) or month_from, to month_to. A build
    without months (a full refresh) checks every month. -#}

{% macro checked_months(column='month') -%}
    {%- set lo = var('check_from', '') or var('month_from', '') -%}
    {%- set hi = var('month_to', '') or lo -%}
    {%- if lo -%} {{ column }} between '{{ lo }}' and '{{ hi }}'
    {%- else -%} true
    {%- endif -%}
{%- endmacro %}

{% macro tested_month_column() -%}
    {#- The month column of the model a generic test is attached to, when that model is rebuilt by month
        (crimelake.monthly_incremental records it in meta); none otherwise. -#}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- if attached and graph is defined and attached in graph.nodes -%}
        {%- set node = graph.nodes[attached] -%}
        {%- if node.config.materialized == 'incremental' -%}
            {{ return(node.config.meta.get('crimelake_month_column')) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {#- dbt's own behaviour (a test's `where` config), plus: a test on a model rebuilt by month reads the months
        the run built. -#}
    {%- set where = config.get('where', '') -%}
    {%- set column = crimelake.tested_month_column() if execute else none -%}
    {%- set scoped = column and (var('check_from', '') or var('month_from', '')) -%}
    {%- if where or scoped -%}
        {%- set clauses = [] -%}
        {%- if where %}{% do clauses.append('(' ~ where ~ ')') %}{% endif -%}
        {%- if scoped %}{% do clauses.append(crimelake.checked_months(column)) %}{% endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ clauses | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
