-- Which jobs had OOM kills in the last `days` days, and which programs were killed.
-- One row per job with at least one kill: recordings, those with kills, kills, the victims.
WITH runs AS (
    SELECT run, label_job AS job, oom_kills
    FROM memtrail
    WHERE type = 'summary' AND end_time >= now() - to_days(getvariable('days')::INTEGER)
), victims AS (
    SELECT run, string_agg(DISTINCT program, ',' ORDER BY program) AS programs
    FROM memtrail
    WHERE type = 'event' AND kind = 'oom_kill'
    GROUP BY run
)
SELECT job,
       count(*) AS runs,
       count(*) FILTER (WHERE oom_kills > 0) AS runs_with_oom_kills,
       sum(oom_kills) AS oom_kills,
       string_agg(DISTINCT victims.programs, ',' ORDER BY victims.programs) AS victims
FROM runs LEFT JOIN victims USING (run)
GROUP BY job
HAVING sum(oom_kills) > 0
ORDER BY oom_kills DESC, job;
