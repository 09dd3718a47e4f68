{#- Sources are the bronze Delta tables, named by path in each source's meta (delta_table_path). DuckDB reads them
    through dbt-duckdb's delta plugin (the source's `plugin: delta` config); Spark reads a Delta table by path as
    delta.`<path>`, so the path must be absolute there (CRIMELAKE_HOME absolute). -#}

{% macro source(source_name, table_name) -%}
    {%- set relation = builtins.source(source_name, table_name) -%}
    {{ return(adapter.dispatch('source_relation', 'crimelake')(relation, source_name, table_name)) }}
{%- endmacro %}

{% macro default__source_relation(relation, source_name, table_name) -%}
    {{ return(relation) }}
{%- endmacro %}

{% macro spark__source_relation(relation, source_name, table_name) -%}
    {%- if not execute -%}{{ return(relation) }}{%- endif -%}
    {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', source_name)
                                           | selectattr('name', 'equalto', table_name) | first -%}
    {%- set path = node.meta.get('delta_table_path') if node else none -%}
    {%- if not path -%}
        {{ exceptions.raise_compiler_error("source " ~ source_name ~ "." ~ table_name ~ " has no meta.delta_table_path") }}
    {%- endif -%}
    {{ return(api.Relation.create(schema='delta', identifier=path, quote_policy={'schema': false, 'identifier': true})) }}
{%- endmacro %}
