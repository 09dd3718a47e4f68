{#- Cross-database helpers where dbt ships none, dispatched per adapter so models run on DuckDB and Spark. -#}

{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'crimelake')(expr, pattern)) }}
{%- endmacro %}
{% macro default__regex_matches(expr, pattern) -%} regexp_matches({{ expr }}, '{{ pattern }}') {%- endmacro %}
{% macro spark__regex_matches(expr, pattern) -%} ({{ expr }} rlike '{{ pattern }}') {%- endmacro %}

{% macro month_filter(column='month') -%}
    {#- Restrict to the months Dagster is rebuilding (month_from..month_to, see run_var), or none on a full build. -#}
    {%- set lo = crimelake.run_var('month_from') -%}
    {%- set hi = crimelake.run_var('month_to') or lo -%}
    {%- if lo and not is_incremental() -%}
        {#- A first (or full-refresh) build of an incremental model holds every month up to the range's end; later
            months come with the runs (or the later chunks of a long run) that build them, so a first national
            load never holds more than a few months in DuckDB at once. -#}
        {{ column }} <= '{{ hi }}'
    {%- elif lo -%} {{ column }} between '{{ lo }}' and '{{ hi }}'
    {%- else -%} true
    {%- endif -%}
{%- endmacro %}

{% macro record_id(sha_column='_source_sha256', line_column='_source_line') -%}
    {#- Stable identity of a bronze row: the file's content hash and the line number, hashed. -#}
    {{ dbt.hash(dbt.concat([sha_column, "':'", dbt.safe_cast(line_column, api.Column.translate_type('string'))])) }}
{%- endmacro %}

{% macro quarter_of(month_column) -%}
    {#- 'YYYY-MM' to 'YYYY-Qn'. -#}
    {{ dbt.concat([dbt.safe_cast("substring(" ~ month_column ~ ", 1, 4)", api.Column.translate_type('string')),
                   "'-Q'",
                   dbt.safe_cast("floor((cast(substring(" ~ month_column ~ ", 6, 2) as integer) - 1) / 3) + 1",
                                 api.Column.translate_type('integer'))]) }}
{%- endmacro %}

{% macro source_labels(source_name, entity) -%}
    {#- The contract's label mapping for one source entity (seed generated from the data contracts). -#}
    select source_label, category_slug
    from {{ ref('contract_labels') }}
    where source = '{{ source_name }}' and entity = '{{ entity }}'
{%- endmacro %}

{% macro median(expr) -%}
    {{ return(adapter.dispatch('median', 'crimelake')(expr)) }}
{%- endmacro %}
{% macro default__median(expr) -%} median({{ expr }}) {%- endmacro %}
{% macro spark__median(expr) -%} percentile({{ expr }}, 0.5) {%- endmacro %}

{% macro month_index(month_column) -%}
    {#- 'YYYY-MM' to a month number (year * 12 + month - 1), so month spans can be counted and generated. -#}
    (cast(substring({{ month_column }}, 1, 4) as integer) * 12 + cast(substring({{ month_column }}, 6, 2) as integer) - 1)
{%- endmacro %}

{% macro month_label(index_expr) -%}
    {#- The inverse of month_index: a month number back to 'YYYY-MM'. -#}
    {%- set string = api.Column.translate_type('string') -%}
    {%- set integer = api.Column.translate_type('integer') -%}
    {%- set year = dbt.safe_cast(dbt.safe_cast("floor((" ~ index_expr ~ ") / 12)", integer), string) -%}
    {#- The month is cast to an integer first: an engine whose series are doubles (dbt's generate_series on Spark
        multiplies by power(2, n)) would otherwise spell it '1.0'. -#}
    {%- set month = dbt.safe_cast(dbt.safe_cast("((" ~ index_expr ~ ") % 12) + 1", integer), string) -%}
    {{ dbt.concat([year, "'-'", dbt.right(dbt.concat(["'0'", month]), 2)]) }}
{%- endmacro %}

{% macro monthly_incremental(column='month') -%}
    {#- Config of a model rebuilt by month: the months a run builds replace the months the table held. DuckDB
        deletes and inserts by month (delete+insert). dbt-spark has no delete+insert and its insert_overwrite
        needs a session setting and dynamic partition overwrite that Sail does not run, so on Spark the model is
        a Delta table partitioned by month that appends after a pre-hook deleted the months being rebuilt. -#}
    {{ return(adapter.dispatch('monthly_incremental', 'crimelake')(column)) }}
{%- endmacro %}
{% macro default__monthly_incremental(column) -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': column,
               'meta': {'crimelake_month_column': column}}) }}
{%- endmacro %}
{% macro spark__monthly_incremental(column) -%}
    {{ return({'incremental_strategy': 'append', 'partition_by': [column],
               'pre_hook': ["{{ crimelake.delete_rebuilt_months('" ~ column ~ "') }}"],
               'meta': {'crimelake_month_column': column}}) }}
{%- endmacro %}

{% macro delete_rebuilt_months(column='month') -%}
    {#- On an incremental run, delete the months the run rebuilds (month_from..month_to, see run_var; every month when
        none is given), which is what delete+insert by month removes on DuckDB. -#}
    {%- if is_incremental() -%}
        {%- set lo = crimelake.run_var('month_from') -%}
        {%- set hi = crimelake.run_var('month_to') or lo -%}
        delete from {{ this }}{% if lo %} where {{ column }} between '{{ lo }}' and '{{ hi }}'{% endif %}
    {%- endif -%}
{%- endmacro %}

{% macro quarter_bounds() -%}
    {#- The first month of month_from's quarter and the last month of month_to's: the quarters a run rebuilds. -#}
    {%- set lo = crimelake.run_var('month_from') -%}
    {%- set hi = crimelake.run_var('month_to') or lo -%}
    {%- if not lo -%}{{ return(none) }}{%- endif -%}
    {%- set lo_m = ((lo[5:7] | int) - 1) // 3 * 3 + 1 -%}
    {%- set hi_m = ((hi[5:7] | int) - 1) // 3 * 3 + 3 -%}
    {{ return((lo[:4] ~ '-' ~ '%02d' % lo_m, hi[:4] ~ '-' ~ '%02d' % hi_m)) }}
{%- endmacro %}

{% macro quarter_month_filter(column='month') -%}
    {#- The months of the quarters a run rebuilds (every month up to the last of them on a first build), or none
        on a full build. -#}
    {%- set bounds = crimelake.quarter_bounds() -%}
    {%- if bounds and is_incremental() -%} {{ column }} between '{{ bounds[0] }}' and '{{ bounds[1] }}'
    {%- elif bounds -%} {{ column }} <= '{{ bounds[1] }}'
    {%- else -%} true
    {%- endif -%}
{%- endmacro %}

{% macro quarterly_incremental() -%}
    {#- Config of a model rebuilt by quarter (a column 'quarter', 'YYYY-Qn'): a run rebuilds the quarters of its
        months. DuckDB deletes and inserts by quarter; Spark deletes those quarters first and appends. -#}
    {{ return(adapter.dispatch('quarterly_incremental', 'crimelake')()) }}
{%- endmacro %}
{% macro default__quarterly_incremental() -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': 'quarter'}) }}
{%- endmacro %}
{% macro spark__quarterly_incremental() -%}
    {{ return({'incremental_strategy': 'append', 'partition_by': ['quarter'],
               'pre_hook': ["{{ crimelake.delete_rebuilt_quarters() }}"]}) }}
{%- endmacro %}

{% macro delete_rebuilt_quarters() -%}
    {%- if is_incremental() -%}
        {%- set bounds = crimelake.quarter_bounds() -%}
        delete from {{ this }}{% if bounds %} where quarter between
            {{ crimelake.quarter_of("'" ~ bounds[0] ~ "'") }} and {{ crimelake.quarter_of("'" ~ bounds[1] ~ "'") }}{% endif %}
    {%- endif -%}
{%- endmacro %}
