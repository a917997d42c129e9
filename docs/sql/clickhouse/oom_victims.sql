-- The programs the kernel killed in the last 10 days: kills, recordings, jobs.
SELECT program, count() AS kills, uniqExact(run) AS runs, uniqExact(label_job) AS jobs,
       max(time) AS last_kill
FROM memtrail
WHERE type = 'event' AND kind = 'oom_kill' AND time >= now() - INTERVAL 10 DAY
GROUP BY program ORDER BY kills DESC, program;
