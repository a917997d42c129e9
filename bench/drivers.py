"""Tick loops for the peers that are libraries or one-shot commands, run as their own process.

Why: a per-tick cost is only comparable when every contender runs alone in its own process at
the same interval, so the harness can read that process's CPU accounting. Each loop ticks on a
fixed schedule and, after every tick, overwrites a tiny status file with
`ticks children_cpu_ns`, so the harness counts ticks exactly (and, for `ps`, the CPU of the
forked children, which the parent's own accounting does not include).

usage: python3 -I -S drivers.py MODE INTERVAL_S STATUS_FILE
  MODE: floor  - listdir /proc, then open/read/close every /proc/PID/statm (the floor)
        held   - the same, but each statm is opened once and re-read with os.pread (the
                 floor for memtrail's approach: descriptors held across ticks)
        psutil - list(psutil.process_iter(['memory_info']))
        ps     - fork `ps -eo pid,rss,args` and read its output
"""

import os
import resource
import sys
import time


def tick_floor():
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fd = os.open("/proc/" + name + "/statm", os.O_RDONLY)
            except OSError:
                continue
            try:
                os.read(fd, 256)
            except OSError:
                pass
            os.close(fd)


def make_held():
    fds = {}

    def tick_held():
        names = os.listdir("/proc")
        for name in names:
            fd = fds.get(name)
            if fd is None:
                if not name.isdigit():
                    continue
                try:
                    fd = fds[name] = os.open("/proc/" + name + "/statm", os.O_RDONLY)
                except OSError:
                    continue
            try:
                os.pread(fd, 256, 0)
            except OSError:
                os.close(fds.pop(name))
        for name in fds.keys() - set(names):
            os.close(fds.pop(name))

    return tick_held


def make_tick(mode):
    if mode == "floor":
        return tick_floor
    if mode == "held":
        return make_held()
    if mode == "psutil":
        import psutil

        def tick_psutil():
            for p in psutil.process_iter(["memory_info"]):
                p.info  # noqa: B018 - the attribute fetch is the work being measured

        return tick_psutil
    if mode == "ps":
        import subprocess

        def tick_ps():
            subprocess.run(["ps", "-eo", "pid,rss,args"], stdout=subprocess.PIPE, check=False)

        return tick_ps
    sys.stderr.write(f"drivers.py: unknown mode {mode!r}\n")
    sys.exit(2)


def children_ns():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((r.ru_utime + r.ru_stime) * 1e9)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: drivers.py MODE INTERVAL_S STATUS_FILE\n")
        return 2
    tick = make_tick(argv[0])
    interval = float(argv[1])
    fd = os.open(argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    ticks = 0
    nxt = time.monotonic()
    while True:
        tick()
        ticks += 1
        os.pwrite(fd, f"{ticks} {children_ns()}\n".ljust(40).encode(), 0)
        nxt += interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(0)
