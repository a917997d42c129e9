-- The programs that held the most memory at each job's peak: take each job's recording with
-- the highest peak, then the programs in its process table at that moment (`peak_program`
-- objects: all processes of a program added up, rank 1 the largest).
WITH peaks AS (
    SELECT label_job AS job, run, peak_used_bytes, peak_time,
           row_number() OVER (PARTITION BY label_job ORDER BY peak_used_bytes DESC, run) AS n
    FROM memtrail
    WHERE type = 'summary' AND peak_used_bytes IS NOT NULL
)
SELECT peaks.job, peaks.run, peaks.peak_used_bytes, peaks.peak_time,
       p.rank, p.program, p.processes, p.rss_bytes
FROM peaks JOIN memtrail AS p ON p.type = 'peak_program' AND p.run = peaks.run
WHERE peaks.n = 1 AND p.rank <= 5
ORDER BY peaks.job, p.rank;
