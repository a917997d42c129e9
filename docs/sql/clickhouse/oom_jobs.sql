-- Which jobs had OOM kills in the last 10 days, and which programs were killed.
WITH victims AS (
    SELECT run, arrayStringConcat(arraySort(groupUniqArray(program)), ',') AS programs
    FROM memtrail WHERE type = 'event' AND kind = 'oom_kill' GROUP BY run
)
SELECT s.label_job AS job, count() AS runs, countIf(s.oom_kills > 0) AS runs_with_oom_kills,
       sum(s.oom_kills) AS oom_kills,
       arrayStringConcat(arraySort(groupUniqArrayIf(victims.programs, victims.programs != '')),
                         ',') AS victims
FROM memtrail AS s LEFT JOIN victims ON victims.run = s.run
WHERE s.type = 'summary' AND s.end_time >= now() - INTERVAL 10 DAY
GROUP BY job HAVING oom_kills > 0
ORDER BY oom_kills DESC, job;
