"""Generate a realistic day of memtrail logs: 1 s tick, ~500 processes, for the analyzer bench.

Shape (what a busy server's log looks like, per docs/format.md): a keyframe every 300 s with
every process, a few percent of processes moving past the change threshold each tick, churn (a
short-lived process every few seconds, a worker recycled now and then), `d` detail for the top
processes every 10 s, a slab line every 10 ticks, segments rotated every 6 hours and gzipped
like the sampler does. Deterministic (seeded) so runs compare.

    python bench/gen_day.py OUT_DIR [--hours 24 | --days 7] [--procs 500] [--interval 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from memtrail.reader import V1_FIELDS  # noqa: E402  (the `s` values below are in this order)

PROGRAMS = [
    (["/usr/bin/python3", "/usr/bin/nova-api"], 120_000),
    (["/usr/bin/python3", "/usr/bin/nova-conductor"], 110_000),
    (["postgres: background writer"], 30_000),
    (["/usr/sbin/mysqld"], 900_000),
    (["/usr/bin/java", "-Xmx1g", "-jar", "/opt/kafka.jar"], 700_000),
    (["nginx: worker process"], 20_000),
    (["/usr/bin/node", "/srv/app/server.js"], 150_000),
    (["/usr/sbin/sshd", "-D"], 6_000),
    (["/bin/bash", "/usr/local/bin/job.sh"], 4_000),
    (["/usr/lib/systemd/systemd-journald"], 40_000),
]
MiB = 1024
GiB = 1024 * 1024


def _j(obj):
    return json.dumps(obj, separators=(",", ":"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--days", type=float, help="instead of --hours: a week is --days 7")
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--segment-hours", type=float, default=6.0)
    args = ap.parse_args(argv)
    if args.days:
        args.hours = args.days * 24
    rnd = random.Random(42)
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    t0 = 1763596800.0  # 2025-11-20T00:00:00Z
    nticks = int(args.hours * 3600 / args.interval)
    seg_ticks = int(args.segment_hours * 3600 / args.interval)
    keyframe_ticks = int(300 / args.interval)
    mem_total = 192 * GiB
    procs = {}  # pid -> [start, cmd, rss, shared, written_rss, base rss]
    next_pid = [1000]

    def spawn(t_index):
        cmd, rss = PROGRAMS[rnd.randrange(len(PROGRAMS))]
        pid = next_pid[0]
        next_pid[0] += 1
        base = int(rss * rnd.uniform(0.5, 1.5))
        procs[pid] = [100000 + t_index * 100, cmd, base, int(rss * 0.2), None, base]
        return pid

    for _ in range(args.procs):
        spawn(0)
    leaker = next(iter(procs))
    fh = None
    seq = 0
    prev_path = None
    oom_kill = 0
    psi = 0
    started = t0
    for i in range(nticks):
        t = t0 + i * args.interval
        ts = f"{t:.3f}"
        out = []
        segment_start = i % seg_ticks == 0
        if segment_start:
            if fh is not None:
                fh.write(f"E {ts} rotate {_j({'next': 'x'})}\n")
                fh.close()
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
            name = f"memtrail-{stamp}-{seq:03d}.log"
            seq += 1
            path = os.path.join(args.out, name)
            fh = open(path, "w")
            if prev_path:
                with open(prev_path, "rb") as src, gzip.open(prev_path + ".gz", "wb", 6) as dst:
                    shutil.copyfileobj(src, dst)
                os.remove(prev_path)
            prev_path = path
            header = {"format": 1, "sampler": "0.1.0", "host": "bench-1", "boot_id": "b-1",
                      "kernel": "6.1.0", "arch": "x86_64", "page_size": 4096, "clk_tck": 100,
                      "interval_s": args.interval, "clock": "realtime", "mono": 1.0,
                      "started": started, "pid": 4242, "uid": 0, "segment": name,
                      "proc_root": "/proc", "settings": {"keyframe_s": 300},
                      "fields": {"s": V1_FIELDS["s"]}}
            out.append(f"H {ts} memtrail 1 {_j(header)}")
        # churn: a short-lived process every 5 s; one exits every 5 s
        events = []
        if i % 5 == 0 and i:
            victim = rnd.choice(list(procs))
            if victim != leaker:
                procs.pop(victim)
                events.append(f"X {ts} {victim}")
            spawn(i)
        # a few percent move past the threshold
        for pid in rnd.sample(list(procs), max(1, len(procs) * 3 // 100)):
            p = procs[pid]
            p[2] = max(1000, int(p[5] * rnd.uniform(0.85, 1.15)))  # wobble around a base
        procs[leaker][5] += 2  # ~7 MiB/hour
        procs[leaker][2] = max(procs[leaker][2], procs[leaker][5])
        if i % 7200 == 3600:
            oom_kill += 1
            victim = rnd.choice(list(procs))
            if victim == leaker:  # the leak runs all week: the kernel takes its neighbour
                pids = list(procs)
                victim = pids[(pids.index(victim) + 1) % len(pids)]
            p = procs.pop(victim)
            events.append(f"E {ts} oom_kill " + _j({"pid": victim, "name": "python3",
                                                    "anon_kib": p[2], "cmd": p[1],
                                                    "source": "kmsg"}))
            events.append(f"X {ts} {victim}")
        psi += rnd.choice((0, 0, 0, 1000))
        if i % 60 == 0:  # recomputed every minute: cheap and close enough
            used = 8 * GiB + sum(p[2] - p[3] for p in procs.values())
        used += rnd.randrange(-2000, 2000)
        avail = mem_total - used
        vals = [mem_total, avail - GiB, avail, 100 * MiB, 4 * GiB, 200 * MiB, 800 * MiB,
                500 * MiB, 300 * MiB, 0, 0, used * 2, 0, 0, used // 2, 60 * MiB, 16 * MiB,
                0, 0, 2048, oom_kill, 1000 + i, 0, 0, 0, 0, 0, 0, 0, psi * 2, psi,
                len(procs), 9000, 11000, int(args.interval * 1000)]
        out.insert(1 if segment_start else 0, f"s {ts} " + " ".join(map(str, vals)))
        out.extend(events)
        keyframe = segment_start or i % keyframe_ticks == 0
        if keyframe:
            out.append(f"K {ts} {len(procs)} 0 " + _j({"reason": "segment" if segment_start
                                                      else "periodic"}))
        for pid, p in procs.items():
            if p[4] is None or segment_start:
                out.append(f"P {ts} {pid} {p[0]} 1 0 " + _j({"comm": os.path.basename(
                    p[1][0])[:15], "cmd": p[1], "cg": "/system.slice/app.service"}))
            if keyframe or p[4] is None or abs(p[2] - p[4]) > max(1024, p[4] // 50):
                out.append(f"p {ts} {pid} {p[2]} {p[3]}")
                p[4] = p[2]
        if i % 10 == 0:
            top = sorted(procs.items(), key=lambda kv: -kv[1][2])[:20]
            for pid, p in top:
                out.append(f"d {ts} {pid} {p[2] - p[3]} {p[3]} 0 0 0")
            out.append(f"b {ts} dentry=300000 kmalloc-64=120000 inode_cache=90000")
        fh.write("\n".join(out) + "\n")
    fh.write(f"Z {t0 + (nticks - 1) * args.interval:.3f} " + _j({"reason": "SIGTERM",
                                                                 "ticks": nticks}) + "\n")
    fh.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
