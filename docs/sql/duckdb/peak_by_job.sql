-- Peak used memory (MemTotal - MemAvailable) per job name across its recordings: p50, p95, max.
-- Nearest-rank percentiles (an actual recording's figure, never interpolated), as
-- `memtrail fleet` computes them: the ceil(p * n)-th smallest.
SELECT label_job AS job,
       count(*) AS runs,
       list_sort(list(peak_used_bytes))[greatest(1, ceil(0.50 * count(*)))::BIGINT] AS p50_bytes,
       list_sort(list(peak_used_bytes))[greatest(1, ceil(0.95 * count(*)))::BIGINT] AS p95_bytes,
       max(peak_used_bytes) AS max_bytes,
       arg_max(run, peak_used_bytes) AS max_run
FROM memtrail
WHERE type = 'summary' AND peak_used_bytes IS NOT NULL
GROUP BY job
ORDER BY max_bytes DESC, job;
