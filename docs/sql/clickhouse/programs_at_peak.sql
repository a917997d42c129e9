-- The programs that held the most memory at each job's peak (its recording with the highest
-- peak, then that recording's peak_program rows).
WITH peaks AS (
    SELECT label_job AS job, argMax(run, peak_used_bytes) AS run, max(peak_used_bytes) AS peak
    FROM memtrail WHERE type = 'summary' AND peak_used_bytes IS NOT NULL GROUP BY job
)
SELECT peaks.job, peaks.run, peaks.peak, p.rank, p.program, p.processes, p.rss_bytes
FROM peaks INNER JOIN memtrail AS p ON p.run = peaks.run
WHERE p.type = 'peak_program' AND p.rank <= 5
ORDER BY peaks.job, p.rank;
