{#- Which months a run's tests read. A run that rebuilds months checks the months it wrote, not the whole
    history, so a month's checks cost the same at month 36 as at month 12. The range is check_from (the run's
    first month; a long run builds in chunks and tests with the last one) or month_from, to month_to. A build
    without months (a full refresh) checks every month. -#}

{% macro run_var(name) -%}
    {#- A month of the run (month_from, month_to, check_from): a dbt var when one is given on the command line,
        else CRIMELAKE_DBT_MONTH_FROM, _MONTH_TO or _CHECK_FROM, which Dagster sets for each invocation. The
        variables are read when models run, never while the project is parsed: dbt parses the whole project
        again whenever its vars change, so months given as vars would cost every run a full parse (seconds per
        invocation), while the parse state of a run with months in the environment serves the next one. -#}
    {{ return(var(name, '') or (env_var('CRIMELAKE_DBT_' ~ (name | upper), '') if execute else '')) }}
{%- endmacro %}

{% macro checked_months(column='month') -%}
    {%- set lo = crimelake.run_var('check_from') or crimelake.run_var('month_from') -%}
    {%- set hi = crimelake.run_var('month_to') or lo -%}
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
    {%- set scoped = column and (crimelake.run_var('check_from') or crimelake.run_var('month_from')) -%}
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
