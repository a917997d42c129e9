"""A real OOM kill inside a real memory cgroup, explained by that cgroup's own processes.

A 150 MiB memory cgroup holds a small sibling and a process that grows until the kernel kills
it; a 400 MiB process runs outside. The report's kill must list the victim and the sibling, not
the outsider (who is the host's largest), and carry the kernel's own task table where this
kernel dumps one (vm.oom_dump_tasks).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import log_text, memory_cgroup, wait_for

from memtrail import html, report

IS_ROOT = os.geteuid() == 0
WAITER = r"""
import sys
blob = bytearray(int(sys.argv[1]) << 20)
for i in range(0, len(blob), 4096):
    blob[i] = 1
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
"""
HOG = r"""
import sys, time
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
chunks = []
while True:
    chunks.append(bytearray(8 << 20))
    for i in range(0, 8 << 20, 4096):
        chunks[-1][i] = 1
    time.sleep(0.01)
"""

TMPFS = r"""
import sys
with open(sys.argv[1], "wb") as fh:
    fh.write(b"x" * (int(sys.argv[2]) << 20))
sys.stdout.write("ready\n"); sys.stdout.flush()
"""


def _start(code: str, marker: str, *args: str, procs: Path = None) -> subprocess.Popen:
    """A child python; with `procs`, moved into that cgroup before it runs (so the sampler
    first sees it there)."""
    def join():
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    proc = subprocess.Popen([sys.executable, "-c", code, *args, marker],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=join if procs else None)
    assert proc.stdout.readline() == "ready\n"
    return proc


@pytest.mark.root
@pytest.mark.live
@pytest.mark.slow
def test_a_memcg_kill_is_explained_by_its_own_cgroup(tmp_path, sampler_factory, capsys):
    if not IS_ROOT:
        pytest.skip("creating memory cgroups needs root")
    name = f"memtrail-oomlive-{os.getpid()}"
    try:
        made = memory_cgroup(name)
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    if made is None:
        pytest.skip("no memory cgroup controller on this host")
    cgdir, procs, limit = made
    dumps = Path("/proc/sys/vm/oom_dump_tasks").read_text().strip() != "0"
    shm = Path(f"/dev/shm/memtrail-oomlive-{os.getpid()}")
    started = []
    try:
        limit.write_text(str(150 << 20))
        memsw = cgdir / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(150 << 20))
        logdir = tmp_path / "log"
        s = sampler_factory(logdir, "--interval", "0.2")
        s.wait_ticks(2)
        outsider = _start(WAITER, f"memtrail-outsider-{os.getpid()}", "400")
        started.append(outsider)
        sibling = _start(WAITER, f"memtrail-sibling-{os.getpid()}", "8", procs=procs)
        started.append(sibling)
        # a file in /dev/shm written from inside the cgroup: charged to it, and left there
        shm_writer = _start(TMPFS, f"memtrail-shm-{os.getpid()}", str(shm), "40", procs=procs)
        started.append(shm_writer)
        victim = _start(HOG, f"memtrail-victim-{os.getpid()}", procs=procs)
        started.append(victim)
        wait_for(lambda: all(f"memtrail-{who}-{os.getpid()}" in log_text(logdir)
                             for who in ("outsider", "sibling", "victim")),
                 timeout=15, what="the three identities in the log")
        s.wait_ticks(log_text(logdir).count("\ns ") + 3)
        victim.stdin.write("go\n")
        victim.stdin.flush()
        assert victim.wait(60) == -signal.SIGKILL
        wait_for(lambda: " oom_kill " in log_text(logdir), timeout=15, what="the OOM event")
        s.wait_ticks(log_text(logdir).count("\ns ") + 3)
        assert s.stop() == 0

        lines = log_text(logdir).splitlines()
        event = [json.loads(line[line.index("{"):]) for line in lines if " oom_kill " in line][0]
        assert event["pid"] == victim.pid and event["memcg_oom"] is True
        if dumps:  # the kernel's own table: exactly the cgroup's tasks
            assert {row[0] for row in event["table"]} == {victim.pid, sibling.pid}
            assert event["table_rows"] == 2
            assert event["invoker"]["name"] == "python3" or event["invoker"]["name"]

        assert report.main(["--json", str(logdir)]) == 0
        kill = json.loads(capsys.readouterr().out)["oom_kills"][0]
        assert kill["scope"] == "memcg" and kill["memcg"].endswith(name)
        assert kill["top_source"] == ("kernel" if dumps else "cgroup")
        pids = [p["pid"] for p in kill["top"]]
        assert victim.pid in pids and sibling.pid in pids and outsider.pid not in pids
        joined = {p["pid"]: p["cmdline"] for p in kill["top"]}
        assert joined[sibling.pid][-1] == f"memtrail-sibling-{os.getpid()}"
        assert outsider.pid in [p["pid"] for p in kill["host_top"]]

        # what filled the cgroup, in the kernel's words at the kill: the 40 MiB tmpfs file
        memcg = kill["memcg_memory"]
        assert memcg["limit_bytes"] == 150 << 20 and memcg["usage_bytes"] > 140 << 20
        assert 40 << 20 <= memcg["shmem_bytes"] < 44 << 20, memcg
        assert memcg["anon_bytes"] > 50 << 20

        assert report.main([str(logdir)]) == 0
        text = capsys.readouterr().out
        own = text[text.index("OOM kills: 1"):text.index("for scale, the largest")]
        assert f"{sibling.pid:>7}  " in own and f"{victim.pid:>7}  " in own
        assert f"{outsider.pid:>7}  " not in own
        assert "    cgroup:     " in own and " of its 150 MiB limit: anon " in own
        assert "of it was tmpfs or shared memory (/dev/shm" in own
        print(own)
        page = tmp_path / "r.html"
        assert html.main([str(logdir), "-o", str(page)]) == 0
        assert "The cgroup held " in page.read_text() and "tmpfs or shared memory" in \
            page.read_text()
    finally:
        shm.unlink(missing_ok=True)
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for _ in range(50):
            try:
                cgdir.rmdir()
                break
            except OSError:
                time.sleep(0.1)
