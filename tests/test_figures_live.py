"""Figures on real recordings: PSS of a program sharing shm, copy-on-write children counted
once, with the sampler's DEFAULT settings (only --dir, --duration and --quiet given)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLER, full_disk, log_text, wait_for

from memtrail.model import pss_current, replay
from memtrail.report import _private_source, analyze, render_text

pytestmark = pytest.mark.live
MiB = 1 << 20

SHM_WORKER = r"""
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
m = mmap.mmap(fd, size, mmap.MAP_SHARED)
for i in range(0, size, 4096):
    m[i] = 1
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
"""

COW_PARENT = r"""
import os, sys
blob = bytearray(b"\x01") * (int(sys.argv[1]) << 20)  # anonymous, touched
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        sys.stdin.readline()  # EOF when the test closes the pipe
        os._exit(0)
    kids.append(pid)
sys.stdout.write("ready " + " ".join(map(str, kids)) + "\n"); sys.stdout.flush()
sys.stdin.readline()
for pid in kids:
    os.waitpid(pid, 0)
"""


def _rollup(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = int(parts[0]) * 1024
    return out


def test_default_settings_shm_pss_and_forked_children(tmp_path):
    tag = f"figures{os.getpid()}"
    shm = Path(f"/dev/shm/memtrail-{tag}")
    shm_script = tmp_path / f"shm_{tag}.py"
    cow_script = tmp_path / f"cow_{tag}.py"
    shm_script.write_text(SHM_WORKER)
    cow_script.write_text(COW_PARENT)
    with open(shm, "wb") as fh:
        fh.truncate(200 * MiB)
    started = []
    try:
        for _ in range(4):
            p = subprocess.Popen([sys.executable, str(shm_script), str(shm)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            started.append(p)
            assert p.stdout.readline() == "ready\n"
        cow = subprocess.Popen([sys.executable, str(cow_script), "200"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        started.append(cow)
        ready = cow.stdout.readline().split()
        assert ready[0] == "ready"
        cow_pids = [cow.pid] + [int(x) for x in ready[1:]]
        logdir = tmp_path / "log"
        sampler = subprocess.run(
            [sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir), "--quiet",
             "--duration", "60"], capture_output=True, timeout=180)
        assert sampler.returncode == 0, sampler.stderr
        truth_shm = sum(_rollup(p.pid)["Pss"] for p in started[:4])
        truth_cow_anon = sum(_rollup(pid)["Pss_Anon"] for pid in cow_pids)
        cow_rss_anon = sum(_rollup(pid)["Rss"] - _rollup(pid).get("Pss_File", 0)
                           for pid in cow_pids)
    finally:
        for p in started:
            p.stdin.close()
            p.wait(timeout=30)
            p.stdout.close()
        shm.unlink()

    rep = analyze([str(logdir)], top=0)
    text = render_text(rep)
    progs = {g["name"]: g for g in rep["programs"]}
    shm_prog = progs[shm_script.name]
    assert shm_prog["count"] == 4
    if shm_prog["pss_count"] == 4:
        assert abs(shm_prog["pss_bytes"] - truth_shm) <= 0.1 * truth_shm, (shm_prog, truth_shm)
    elif shm_prog["pss_count"]:  # partial: said so, never shown as the program's PSS
        assert f"({shm_prog['pss_count']} of 4)" in text
    else:  # none read (a busy host's larger programs came first): not shown at all
        assert shm_prog["pss_bytes"] is None
    cow_prog = progs[cow_script.name]
    assert cow_prog["count"] == 4 and cow_prog["pss_count"] == 4
    # RSS minus shared would count the parent's 200 MiB four times; PSS counts it once.
    assert cow_rss_anon > 700 * MiB
    assert cow_prog["private_bytes"] < 1.2 * truth_cow_anon + 8 * MiB, (cow_prog, truth_cow_anon)
    assert cow_prog["private_bytes"] < 0.4 * cow_rss_anon
    # Where "process private memory" came from depends on the host's other processes (all
    # read, some read, or their sum above the kernel's AnonPages); the report must say which,
    # and the forked children's PSS reads must count in it.
    un = rep["unexplained"]
    assert un["private_from_pss"] >= 4, un
    assert f"({_private_source(un)})" in text
    assert "private = RSS minus shared" not in text



@pytest.mark.root
def test_disk_full_gaps_add_up(tmp_path, sampler_factory, fakeproc):
    """A real ENOSPC: the sampler's gap event and the missed ticks are one gap, and the span,
    its gaps and the time at each rate add up."""
    with full_disk(tmp_path, sampler_factory, fakeproc) as (s, mnt, filler):
        s.wait_stderr("cannot write")
        filler.unlink()
        wait_for(lambda: " gap " in log_text(mnt), what="a gap record once space returned")
        s.wait_ticks(log_text(mnt).count("\ns ") + 3)
        assert s.stop() == 0
        rep = analyze([str(mnt)])
    span = rep["span"]
    gaps = span["gaps"]
    assert gaps and any("ENOSPC" in g["reason"] for g in gaps)
    for a, b in zip(gaps, gaps[1:]):
        assert a["end"] < b["start"]  # merged: no moment counted twice
    assert 0 < span["gap_seconds"] < span["duration_s"]
    looked = sum(r["seconds"] for r in span["rates"])
    assert abs(looked + span["gap_seconds"] - span["duration_s"]) < 0.2, span
    assert rep["reading"]["data_problems"] == {}


def test_a_climb_then_a_plateau_and_fast_ticking_recorded(tmp_path, sampler_factory, fakeproc):
    """The real sampler over a fixture /proc: a process climbs for 32 s then stays flat, and
    memory runs low for a while (the sampler ticks fast); the report says both as measured."""
    fakeproc.add(300, ["/usr/bin/python3", "/srv/filler.py"], rss_kib=7 * 1024)
    fakeproc.add(301, ["/usr/sbin/sshd", "-D"], rss_kib=8 * 1024)
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.5", "--fast-interval", "0.1",
                        "--proc-root", str(fakeproc.root), "--no-cgroups", "--no-kmsg")
    s.wait_ticks(1)
    start = time.monotonic()
    while time.monotonic() - start < 32:  # +20 MiB a second, read every half second
        fakeproc.set_rss(300, int((7 + 20 * (time.monotonic() - start)) * 1024))
        time.sleep(0.1)
    fakeproc.set_rss(300, (7 + 640) * 1024)
    total = 8 << 20
    fakeproc.set_meminfo(total=total, avail=total // 20)  # 5% available: trouble
    wait_for(lambda: '"interval_ms":100' in log_text(logdir), what="fast ticking")
    time.sleep(3)
    fakeproc.set_meminfo(total=total, avail=total * 3 // 4)
    wait_for(lambda: '"reason":"recovered"' in log_text(logdir), what="recovery")
    time.sleep(6)
    assert s.stop() == 0
    rep = analyze([str(logdir)])
    text = render_text(rep)
    [g] = [g for g in rep["growers"] if g["pid"] == 300]
    assert abs(g["first_bytes"] - 7 * MiB) < 2 * MiB
    assert abs(g["last_bytes"] - 647 * MiB) < 16 * MiB and g["max_bytes"] == g["last_bytes"]
    assert g["grew_until"] is not None and g["flat_s"] >= 8
    assert "MiB, +" in text and "while growing, then flat for" in text
    rates = {r["interval_s"]: r for r in rep["span"]["rates"]}
    assert set(rates) == {0.5, 0.1}
    assert 2 <= rates[0.1]["seconds"] <= 30 and rates[0.1]["reasons"][0].startswith("MemAvail")
    assert "every 0.1 s for" in text and "while the host was short of memory" in text
    looked = sum(r["seconds"] for r in rep["span"]["rates"])
    assert abs(looked + rep["span"]["gap_seconds"] - rep["span"]["duration_s"]) < 0.2


GROWER = r"""
import sys
blob = bytearray(b"\x01") * (200 << 20)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
more = bytearray(b"\x01") * (300 << 20)  # private growth after the PSS read
sys.stdout.write("grown\n"); sys.stdout.flush()
sys.stdin.readline()
"""


def test_a_process_that_grew_after_its_pss_read_is_read_again_before_the_next_round(
        tmp_path, sampler_factory):
    """A real process read by the PSS tier at 200 MiB grows 300 MiB: with rounds an hour
    apart, the sampler reads it again at a status tick, its `D` line carries the RSS the new
    figures describe, and the report counts its PSS at the end as current."""
    script = tmp_path / "grower.py"
    script.write_text(GROWER)
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    logdir = tmp_path / "log"
    try:
        assert proc.stdout.readline() == "ready\n"
        # No snapshot either (a new MemAvailable low would start a full round): the read
        # can only come from the status tick's check.
        s = sampler_factory(logdir, "--interval", "0.2", "--status-every", "0.4",
                            "--pss-every", "1h", "--pss-top-n", "3", "--low-pct", "0",
                            "--low-step", "1T", "--psi-full-pct", "100")
        s.wait_ticks(1)

        def d_lines():
            return [line.split() for line in log_text(logdir).splitlines()
                    if line.startswith("D ") and line.split()[2] == str(proc.pid)]

        wait_for(lambda: d_lines(), timeout=30, what="the grower's first PSS read")
        first = d_lines()[0]
        assert 190 << 10 < int(first[-1]) < 260 << 10, first  # KiB: read at ~200 MiB
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "grown\n"
        wait_for(lambda: int(d_lines()[-1][-1]) > 450 << 10, timeout=30,
                 what="a PSS read at the grown size")
        last = d_lines()[-1]
        assert int(last[4]) > 450 << 10, last  # Pss_Anon (KiB) now includes the growth
        assert s.stop() == 0
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    rounds = [line for line in log_text(logdir).splitlines() if line.startswith("E ")
              and line.split()[2] == "pss"]
    assert len(rounds) == 1, rounds  # the first round only: no other full round ran
    last = None
    for tick in replay([str(logdir)]):
        if proc.pid in tick.procs:
            last = tick.procs[proc.pid]
    # At its last tick the figures describe it (at the growth tick itself they did not yet:
    # the check runs at status ticks, so which moment is the host's peak decides the report's).
    assert last is not None and pss_current(last) and last.pss > 450 * MiB, last.pss


@pytest.mark.root
def test_a_real_zram_device_s_pages_are_recorded_as_compressed_memory(tmp_path,
                                                                       sampler_factory):
    """32 MiB of random data written to a real zram disk: zsmalloc holds it in RAM (random
    data does not compress), /proc/vmstat's nr_zspages counts it, and no meminfo field does."""
    zram = Path("/sys/block/zram0")
    if os.geteuid() != 0 or not zram.is_dir():
        pytest.skip("needs root and a zram device (modprobe zram)")
    if (zram / "disksize").read_text().strip() != "0":
        pytest.skip("zram0 is in use here")
    logdir = tmp_path / "log"
    try:
        (zram / "disksize").write_text(str(64 << 20))
        s = sampler_factory(logdir, "--interval", "0.2")
        s.wait_ticks(2)
        base = max(t.system.zsmalloc or 0 for t in replay(str(logdir)))
        fd = os.open("/dev/zram0", os.O_WRONLY)
        try:
            os.write(fd, os.urandom(32 << 20))
            os.fsync(fd)
        finally:
            os.close(fd)

        def recorded() -> int:
            return max((t.system.zsmalloc or 0 for t in replay(str(logdir))), default=0)
        wait_for(lambda: recorded() >= base + (30 << 20), timeout=30,
                 what="zram's pages in the s lines")
        assert s.stop() == 0
    finally:
        (zram / "reset").write_text("1")
    assert "zsmalloc" in log_text(logdir).splitlines()[0]  # named in the header's fields
