-- Peak used memory per job: nearest-rank p50, p95 (as `memtrail fleet`), max.
SELECT label_job AS job, count() AS runs,
       arraySort(groupArray(peak_used_bytes))[toUInt32(greatest(1, ceil(0.50 * count())))] AS p50_bytes,
       arraySort(groupArray(peak_used_bytes))[toUInt32(greatest(1, ceil(0.95 * count())))] AS p95_bytes,
       max(peak_used_bytes) AS max_bytes, argMax(run, peak_used_bytes) AS max_run
FROM memtrail
WHERE type = 'summary' AND peak_used_bytes IS NOT NULL
GROUP BY job ORDER BY max_bytes DESC, job;
