"""Older kernels' /proc, as each one writes it, recorded by the real sampler and read by the
analyzer: every figure either measured or said to be missing, never a 0 or a fallback
presented as the real thing.

What each kernel lacks (tests/fakeproc.py shapes the files): Pss_Anon in smaps_rollup before
5.7 (Ubuntu 20.04's 5.4, RHEL 8's 4.18), PSI before 4.20, smaps_rollup itself before 4.14
(RHEL 7's 3.10: only smaps), RssAnon/RssFile/RssShmem in status before 4.5, SwapPss before
4.3, MemAvailable before 3.14 (upstream 3.10; RHEL 7 backported it).
"""

from __future__ import annotations

import json

import pytest
from conftest import log_text
from fakeproc import FakeProc
from test_sampler_unit import Clock, events, make, of

from memtrail import safetext, timeline
from memtrail import sampler as S
from memtrail.report import analyze, private_part, render_markdown, render_text

MiB = 1 << 20
RSS_KIB, SHARED_KIB, PSS_KIB = 200_000, 2048, 70_000  # three forked workers sharing much


def workers(tmp_path, kernel) -> FakeProc:
    fp = FakeProc(tmp_path / "proc", kernel=kernel)
    for pid in (100, 101, 102):
        fp.add(pid, ["/usr/bin/python3", "worker.py"], rss_kib=RSS_KIB, shared_kib=SHARED_KIB,
               ppid=1 if pid == 100 else 100)
        fp.set_pss(pid, RSS_KIB, PSS_KIB, swap_kib=1000)
    return fp


def record(fp, tmp_path, sampler_factory):
    """The real sampler over the tree until it wrote four ticks, PSS read at every one."""
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--proc-root", str(fp.root), "--kmsg", "", "--no-mlock",
                        "--no-oom-adj", "--no-cgroups", "--journal", "no", "--interval", "0.2",
                        "--status-every", "0.2", "--pss-every", "0.2")
    s.wait_ticks(4)
    assert s.stop() == 0
    return logdir, log_text(logdir)


def d_lines(text):
    return [line.split()[2:] for line in text.splitlines() if line.startswith("D ")]


KERNELS = {"3.10": (3, 10), "4.19": (4, 19), "5.4": (5, 4), "6.6": (6, 6)}


@pytest.mark.parametrize("name", KERNELS)
def test_each_kernel_s_figures_are_measured_or_said_missing(tmp_path, sampler_factory, name):
    kernel = KERNELS[name]
    logdir, text = record(workers(tmp_path, kernel), tmp_path, sampler_factory)
    assert "Traceback" not in text

    # PSS: from smaps_rollup, or summed from smaps before 4.14 (and said so once)
    ds = d_lines(text)
    assert {d[0] for d in ds} == {"100", "101", "102"}
    for d in ds:
        pid, pss, pss_anon, pss_file, pss_shmem, swap, swap_pss, rss = d
        assert int(pss) == PSS_KIB and int(swap) == 1000 and int(rss) == RSS_KIB
        assert (pss_anon, pss_file, pss_shmem) == (
            (str(PSS_KIB), "0", "0") if kernel >= (5, 7) else ("-",) * 3)
        assert swap_pss == ("1000" if kernel >= (4, 3) else "-")
    assert ("PSS is summed from /proc/PID/smaps" in text) == (kernel < (4, 14))
    assert text.count("PSS is summed from /proc/PID/smaps") <= 1
    assert '"gone"' not in text  # a kernel without smaps_rollup is not a host of the dead

    rep = analyze([str(logdir)])
    out = render_text(rep)
    prog = rep["programs"][0]
    assert prog["count"] == 3 and prog["pss_bytes"] == 3 * PSS_KIB * 1024
    # Own memory: Pss_Anon, or before 5.7 the lesser of PSS and RSS minus shared (here PSS):
    # never RSS minus shared, which counts the workers' shared pages three times.
    assert prog["private_bytes"] == 3 * PSS_KIB * 1024
    un = rep["unexplained"]
    assert un["private_from_pss"] == 3
    assert un["private_pss_bound"] == (0 if kernel >= (5, 7) else 3)
    assert ("(the kernel gives no Pss_Anon before 5.7: a bound from above), read for all 3 "
            "processes" in out) == (kernel < (5, 7))

    # Kernel memory named since 2026-12-02, each where the kernel has it (fakeproc: Percpu
    # 2048 KiB from 4.14; VmallocUsed 30000 KiB, RAM only from 5.3: a constant 0 on 4.4-5.2
    # and address space before, so not recorded there; nr_zspages 0 from 4.8, Zswap 0 from
    # 5.19), vmalloc less the kernel stacks (4000 KiB) it holds too
    assert un["percpu_bytes"] == (2048 * 1024 if kernel >= (4, 14) else None)
    assert un["vmalloc_bytes"] == (26000 * 1024 if kernel >= (5, 3) else None)
    assert ("vmalloc beyond stacks" in out) == (kernel >= (5, 3))
    assert json.loads(text.splitlines()[0].split(" ", 4)[4])["kernel"].startswith(
        "6." if kernel == (6, 6) else f"{kernel[0]}.{kernel[1]}.0-fakeproc")
    assert un["compressed_bytes"] == (0 if kernel >= (4, 8) else None)
    assert ("per-CPU 2.0 MiB" in out) == (kernel >= (4, 14))
    assert S.kernel_version("6.18.44-fc-v1045") == (6, 18) and S.kernel_version("x") == (0, 0)
    assert S.kernel_version("4.19") == (4, 19) and S.kernel_version("5") == (0, 0)
    assert ("compressed (zram, zswap) 0 B" in out) == (kernel >= (4, 8))
    parts = ("slab", "shmem", "page_tables", "kernel_stack", "hugetlb", "percpu", "vmalloc",
             "compressed", "other")
    assert sum(un[f"{p}_bytes"] or 0 for p in parts) == un["bytes"]

    # PSI: a stall of 0 only where the kernel measures stalls
    if kernel >= (4, 20):
        assert rep["psi"]["some_us"] == 0 and "PSI stall       some 0 s" in out
    else:
        assert rep["psi"] == {"some_us": None, "full_us": None, "some_pct": None,
                              "full_pct": None}
        assert "PSI stall       not recorded: the kernel gave no /proc/pressure/memory" in out
        assert "PSI stall: not recorded" in render_markdown(rep)

    # MemAvailable: estimated, and said to be, only where the kernel has none
    estimated = kernel < (3, 14)
    assert rep["memory"]["available_estimated"] is estimated
    assert ("available estimated: the kernel gave no MemAvailable" in out) is estimated
    assert rep["peak"]["used_bytes"] is not None and rep["programs_time"] is not None
    tl = timeline.open_recording(str(logdir))[0]  # the console's index: the same figure
    assert len(tl.times) >= 4 and min(tl.used) >= 0 and tl.peak() is not None
    if estimated:  # fakeproc's meminfo: free + buffers + cached - shmem + sreclaimable
        avail = (5 << 20) + 10240 + 512000 - 20480 + 60000
        assert rep["peak"]["available_bytes"] == avail * 1024
        assert set(tl.avail) == {avail}

    # status: RssAnon and its kin from 4.5; before, the status line says it has none
    d_status = [line.split()[2:] for line in text.splitlines() if line.startswith("d ")]
    assert d_status
    for d in d_status:
        assert (d[1] == "-") == (kernel < (4, 5)), d


def test_pss_summed_from_smaps_as_the_kernel_writes_it(tmp_path):
    """Many mappings (more than one 64 KiB read), a value the kernel never writes, and a
    final line without its newline: each mapping's value counts once, a bad one is lost
    alone."""
    body = "".join(
        f"{i:08x}-{i + 1:08x} rw-p 00000000 00:00 0\nRss:  8 kB\nPss:   {i % 7} kB\n"
        f"Swap:  1 kB\nSwapPss:  1 kB\nVmFlags: rd wr\n" for i in range(4000))
    path = tmp_path / "smaps"
    path.write_text(body + "00-01 r--p 0 0:0 0\nPss:  x kB\nPss:   5 kB")
    assert len(body) > 3 * 65536
    vals = S.sum_smaps(str(path))
    assert vals == [sum(i % 7 for i in range(4000)) + 5, None, None, None, 4000, 4000]
    path.write_text("")  # a zombie's: no mappings
    assert S.sum_smaps(str(path)) is None
    assert S.sum_smaps(str(tmp_path / "gone")) is None and S.READ_ERRNO[0] == 2


def test_pss_event_says_what_a_kernel_without_rollup_left_unread(tmp_path, sampler_factory):
    """A process that exits between the listing and its smaps read is gone; the rest are
    read. The switch to smaps happens once, at the first process that still has one."""
    fp = FakeProc(tmp_path / "proc", kernel=(3, 10))
    fp.add(200, ["/usr/bin/java", "-jar", "app.jar"], rss_kib=RSS_KIB)
    fp.add(201, ["/usr/bin/java", "-jar", "app.jar"], rss_kib=RSS_KIB)
    (fp.root / "201/smaps").unlink()  # a kernel thread's or a reaped one's: nothing to sum
    _, text = record(fp, tmp_path, sampler_factory)
    rounds = [json.loads(x[x.index("{"):]) for x in text.splitlines() if " pss {" in x]
    assert rounds and all(e["read"] == 1 and e["gone"] == 1 for e in rounds), rounds
    assert [d[0] for d in d_lines(text)][:1] == ["200"]


def test_without_memavailable_the_sampler_still_sees_memory_run_short(tmp_path):
    """Before 3.14 the sampler estimates MemAvailable for its own decisions (faster ticks, a
    snapshot at each new low); the log keeps the kernel's `-`."""
    fp = FakeProc(tmp_path / "old", kernel=(3, 10))
    fp.add(100, ["/usr/bin/python3", "worker.py"])
    s = make(fp, tmp_path)
    clock = Clock()
    first = clock.tick(s, new_segment=True)
    assert of(first, "s")[0].split()[4] == "-"  # mem_available as the kernel gave it: none
    fp.set_meminfo(free=100 << 10)  # 100 MiB free of 8 GiB, and the cache as before
    lines = clock.tick(s)
    estimate = (100 << 10) + 10240 + 512000 - 20480 + 60000  # + buffers + cached - shmem + ...
    rate, low = events(lines, "rate"), events(lines, "low")
    assert rate and rate[0]["reason"] == f"MemAvailable {100 * estimate / (8 << 20):.1f}%"
    assert low and low[0]["available_kib"] == estimate
    assert of(lines, "s")[0].split()[4] == "-"


def test_private_memory_without_pss_anon_is_the_closest_bound_from_above():
    # a forked worker: PSS divides what it shares with its siblings; RSS minus shared does not
    assert private_part(200, 2, None, 70) == 70
    # a process mostly mapping a file: its PSS is mostly that file, its anonymous RSS small
    assert private_part(100, 90, None, 95) == 10
    assert private_part(200, 2, 50, 70) == 50  # Pss_Anon, where the kernel gives it (5.7 on)
    assert private_part(200, 2, None) == 198  # no PSS read at all


def test_per_cpu_memory_larger_than_any_program_is_named(tmp_path, sampler_factory):
    """Removed memory cgroups the kernel has not freed pile up in Percpu: a node's classic
    slow leak, which no process explains."""
    fp = workers(tmp_path, (6, 6))
    fp.set_meminfo(avail=4 << 20, percpu=3 << 20)  # 4 GiB used, 3 GiB of it per-CPU
    logdir, _ = record(fp, tmp_path, sampler_factory)
    rep = analyze([str(logdir)])
    un = rep["unexplained"]
    assert un["percpu_bytes"] == 3 << 30 and un["other_bytes"] < 1 << 30
    assert un["sentence"].startswith("per-CPU kernel memory (Percpu: 3.0 GiB) is more than")
    assert f"**Kernel memory:** {safetext.markdown(un['sentence'])}" in render_markdown(rep)


def test_compressed_swap_in_ram_is_named_once(tmp_path, sampler_factory):
    """zram holds swapped-out pages, compressed, in RAM: zsmalloc's pages, which no meminfo
    field counts. zswap's pool (meminfo Zswap) lives in the same pages when it uses zsmalloc,
    so the two are not added."""
    fp = workers(tmp_path, (6, 6))
    fp.set_meminfo(avail=4 << 20, zswap=100 << 10)  # 4 GiB used; a 100 MiB zswap pool
    fp.set_vmstat(zspages=(2600 << 10) // fp.page_kib)  # 2.5 GiB of zsmalloc pages
    logdir, text = record(fp, tmp_path, sampler_factory)
    s_line = [x for x in text.splitlines() if x.startswith("s ")][0].split()
    assert s_line[2 + S.S_INDEX["zsmalloc"]] == str(2600 << 10)
    un = analyze([str(logdir)])["unexplained"]
    assert un["compressed_bytes"] == 2600 << 20
    assert un["sentence"].startswith("compressed memory (zram, zswap: 2.5 GiB) is more than")


def test_a_corrupt_memavailable_is_a_bad_value_not_an_old_kernel(tmp_path, sampler_factory):
    logdir, text = record(workers(tmp_path, (6, 6)), tmp_path, sampler_factory)
    at = 2 + S.S_INDEX["mem_available"]
    segment = next(logdir.glob("memtrail-*.log"))

    def with_available(value: str) -> dict:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("s "):
                fields = line.split(" ")
                fields[at] = value
                lines[i] = " ".join(fields)
        segment.write_text("\n".join(lines) + "\n")
        return analyze([str(logdir)])

    rep = with_available("99999999999")  # more than MemTotal: corrupt
    assert rep["memory"]["available_estimated"] is False
    assert rep["reading"]["data_problems"].get("bad_value", 0) >= 4
    assert rep["peak"]["used_bytes"] is None
    rep = with_available("-")  # what a kernel before 3.14 writes
    assert rep["memory"]["available_estimated"] is True and rep["peak"]["used_bytes"]


def test_the_private_source_says_where_the_bound_stood_in():
    from memtrail.report import _private_source

    some = _private_source({"processes": 8, "private_from_pss": 5, "private_pss_bound": 2})
    assert some.startswith("private = PSS of anonymous pages for 5 of 8 processes; the kernel "
                           "gave no Pss_Anon (before 5.7), so for 2 of them: PSS or RSS minus")
    assert some.endswith("RSS minus shared: pages a forked child shares with its parent count "
                         "once per process there for the rest")
    exact = _private_source({"processes": 3, "private_from_pss": 3, "private_pss_bound": 0})
    assert exact == "private = PSS of anonymous pages, read for all 3 processes"
