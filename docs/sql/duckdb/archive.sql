-- memtrail.jsonl/1 archive as one DuckDB view. Run first; the other files query `memtrail`.
--   SET VARIABLE archive = 'artifacts/**/*.jsonl';   -- a glob; .jsonl.gz works too
--   SET VARIABLE days = 10;                           -- the window of oom_jobs/oom_victims
-- Columns are spelled out (docs/export.md) rather than inferred: schema inference samples the
-- first rows, and a key that first appears late (an OOM kill) would be missed.
CREATE OR REPLACE VIEW memtrail AS
SELECT * FROM read_json(getvariable('archive'), format = 'newline_delimited', columns = {
    schema: 'VARCHAR', type: 'VARCHAR', run: 'VARCHAR', host: 'VARCHAR',
    time: 'TIMESTAMPTZ', unix: 'DOUBLE', label_job: 'VARCHAR',
    -- recording
    boot_id: 'VARCHAR', kernel: 'VARCHAR', started: 'TIMESTAMPTZ', interval_s: 'DOUBLE',
    -- system
    mem_total_bytes: 'BIGINT', mem_used_bytes: 'BIGINT', mem_available_bytes: 'BIGINT',
    swap_used_bytes: 'BIGINT', processes: 'BIGINT', psi_full_us_total: 'BIGINT',
    -- process, exit, event, peak_program
    pid: 'BIGINT', program: 'VARCHAR', comm: 'VARCHAR', cmdline: 'VARCHAR', cgroup: 'VARCHAR',
    rss_bytes: 'BIGINT', pss_bytes: 'BIGINT', swap_bytes: 'BIGINT', anon_bytes: 'BIGINT',
    kind: 'VARCHAR', oom_constraint: 'VARCHAR', oom_cgroup: 'VARCHAR', detail: 'VARCHAR',
    rank: 'BIGINT', private_bytes: 'BIGINT',
    -- summary
    start_time: 'TIMESTAMPTZ', end_time: 'TIMESTAMPTZ', end_unix: 'DOUBLE', duration_s: 'DOUBLE',
    ticks: 'BIGINT', gap_seconds: 'DOUBLE', clean_end: 'BOOLEAN',
    peak_used_bytes: 'BIGINT', peak_time: 'TIMESTAMPTZ', lowest_available_bytes: 'BIGINT',
    oom_kills: 'BIGINT', psi_full_us: 'BIGINT', overruns: 'BIGINT'
});
