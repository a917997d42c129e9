"""A generated archive of CI recordings (a few job names, some OOM kills, some old), for the
SQL tests and the fleet benchmark: logs written by `scenarios.Host`, exported to JSON lines
in-process with the job's name as a label."""

from __future__ import annotations

import os
import time
from typing import Dict, List, Tuple

from scenarios import GiB, Host

from memtrail import jsonl
from memtrail.export import Filter
from memtrail.reader import ReadStats

JOBS = ("nova-tempest", "neutron-ovn", "cinder-lvm", "swift-func", "keystone-unit")
DAY = 86400.0


def make_recording(directory: str, i: int, t0: float) -> Tuple[str, List[str]]:
    """One job's recording; returns (job name, programs the kernel killed)."""
    job = JOBS[i % len(JOBS)]
    h = Host(directory, host=f"ci-{i % 11}", boot_id=f"boot-{i:06d}", mem_total=8 * GiB, t0=t0)
    h.spawn(100, ["/usr/bin/python3", "/usr/local/bin/nova-api"], 300 + (i * 37) % 900,
            comm="nova-api")
    h.spawn(101, ["/usr/bin/python3", "/usr/local/bin/nova-api"], 280, comm="nova-api")
    h.spawn(102, ["/usr/sbin/mysqld"], 400 + (i * 53) % 700, comm="mysqld")
    h.spawn(103, ["/bin/sh", "-c", "tox -e py3"], 2, comm="sh")
    victims: List[str] = []
    h.start_segment_tick()
    h.tick(2)
    if i % 9 == 0:
        h.spawn(104, ["/usr/bin/java", "-jar", "/opt/es/elasticsearch.jar"], 1500 + i % 500,
                comm="java")
        h.tick(1)
        h.oom_kill_proc(104)
        victims.append("elasticsearch.jar")
    if i % 14 == 0:
        h.spawn(105, ["/usr/bin/python3", "/opt/stack/tempest/run.py"], 900, comm="python3")
        h.tick(1)
        h.set_rss(105, 1600)
        h.tick(1)
        h.oom_kill_proc(105)
        victims.append("run.py")
    h.set_rss(102, 600 + (i * 71) % 900)
    h.tick(2)
    h.stop()
    return job, victims


def make_archive(root: str, runs: int, days_old: Tuple[float, float] = (0.2, 20.0),
                 export: bool = True) -> Dict[str, dict]:
    """`runs` recordings under root/logs/JOB/run-N and (with `export`) their JSON lines under
    root/archive/JOB/run-N.jsonl; every seventh recording is older than `days_old[1]` days."""
    now = time.time()
    expected: Dict[str, dict] = {}
    for i in range(runs):
        age = days_old[1] + 1.0 if i % 7 == 3 else days_old[0] + (i % 5)
        job = JOBS[i % len(JOBS)]
        rel = f"{job}/run-{i:05d}"
        logdir = os.path.join(root, "logs", rel)
        job, victims = make_recording(logdir, i, now - age * DAY)
        expected[rel] = {"job": job, "victims": victims, "age_days": age}
        if export:
            out = os.path.join(root, "archive", rel + ".jsonl")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w", encoding="utf-8") as fh:
                jsonl.write_jsonl([logdir], Filter(None, None, None), fh, ReadStats(),
                                  jsonl.parse_labels([f"job={job}"]))
    return expected
