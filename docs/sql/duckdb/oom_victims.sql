-- The programs the kernel killed in the last `days` days: kills, recordings, jobs.
SELECT program,
       count(*) AS kills,
       count(DISTINCT run) AS runs,
       count(DISTINCT label_job) AS jobs,
       string_agg(DISTINCT label_job, ',' ORDER BY label_job) AS job_names,
       max(time) AS last_kill
FROM memtrail
WHERE type = 'event' AND kind = 'oom_kill'
  AND time >= now() - to_days(getvariable('days')::INTEGER)
GROUP BY program
ORDER BY kills DESC, program;
