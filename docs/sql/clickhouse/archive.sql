-- memtrail.jsonl/1 archive as one ClickHouse table, for `clickhouse local` (docs/fleet.md).
-- Edit the glob, then: cat archive.sql oom_jobs.sql | clickhouse local --multiquery
-- The same questions as docs/sql/duckdb/; tests/test_archive_sql.py runs these files with the
-- ClickHouse engine in process (chDB) and checks they give the DuckDB queries' rows.
CREATE TABLE memtrail ENGINE = Memory AS
SELECT * FROM file('artifacts/**/*.jsonl', 'JSONEachRow',
    'schema String, type String, run String, host String, time DateTime64(3, \'UTC\'),
     unix Float64, label_job Nullable(String), kind Nullable(String), pid Nullable(Int64),
     program Nullable(String), rss_bytes Nullable(Int64), rank Nullable(Int64),
     processes Nullable(Int64), end_time Nullable(DateTime64(3, \'UTC\')),
     peak_used_bytes Nullable(Int64), peak_time Nullable(DateTime64(3, \'UTC\')),
     oom_kills Nullable(Int64), mem_used_bytes Nullable(Int64)')
SETTINGS input_format_skip_unknown_fields = 1, date_time_input_format = 'best_effort';
