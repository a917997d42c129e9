"""What a cgroup's usage is made of (`m` records): the sampler reads the largest cgroups'
memory.stat at status ticks, and the report gives a unit's make-up at its peak. A CI job's
cgroup at 7.9 of 8 GiB then says whether that was its processes, a tmpfs they filled, page
cache or the kernel's memory."""

from __future__ import annotations

import json

from test_sampler_unit import Clock, _cg, of

from memtrail import sampler as S
from memtrail.report import analyze, render_text
from memtrail.units import fmt_bytes

MiB = 1 << 20


def _stat(cg, rel, **kib):
    """memory.stat in v2's words (bytes); `kernel` absent unless given, as before 5.18."""
    text = "".join(f"{k} {v << 10}\n" for k, v in kib.items())
    (cg / rel / "memory.stat").write_text(text + "pgfault 12345\n")


def _sampler(fakeproc, tmp_path, cg, *extra):
    cfg = S.parse_args(["--dir", str(tmp_path / "log"), "--proc-root", str(fakeproc.root),
                        "--kmsg", "", "--no-mlock", "--no-oom-adj", "--quiet", "--journal", "no",
                        "--cgroup-root", str(cg), *extra])
    S.check_log_dir(cfg.dir)
    return S.Sampler(cfg)


def _tree(tmp_path):
    cg = tmp_path / "cgroup"
    cg.mkdir()
    (cg / "cgroup.controllers").write_text("cpu memory pids\n")
    _cg(cg, "system.slice", 700 << 20)
    _cg(cg, "system.slice/ci-job.scope", 650 << 20)
    _cg(cg, "user.slice", 10 << 20)
    _stat(cg, "system.slice", anon=120 << 10, file=560 << 10, shmem=500 << 10,
          kernel_stack=1024, pagetables=2048, slab=7168, sock=64)
    _stat(cg, "system.slice/ci-job.scope", anon=100 << 10, file=530 << 10, shmem=500 << 10,
          kernel=20 << 10, sock=0)
    _stat(cg, "user.slice", anon=8 << 10, file=2 << 10, shmem=0, kernel=0, sock=0)
    return cg


def test_the_largest_cgroups_make_up_is_recorded_when_it_moves(fakeproc, tmp_path):
    cg = _tree(tmp_path)
    _cg(cg, "machine.slice", 40 << 20)  # third largest, past 16 MiB: not read, not "grown"
    _stat(cg, "machine.slice", anon=40 << 10, file=0, shmem=0, kernel=0, sock=0)
    (cg / "memory.current").write_text(f"{1 << 30}\n")  # a tracked root (v1, a container)
    (cg / "memory.stat").write_text(f"anon {1 << 30}\n")
    s = _sampler(fakeproc, tmp_path, cg, "--cgroup-stat-n", "2")
    clock = Clock()
    log = [s.header(clock.t + 1, 0.0, "memtrail-20231114T221321Z-000.log")]
    lines = clock.tick(s, new_segment=True)
    log += lines
    ids = {json.loads(x[x.index("{"):])["path"]: x.split()[2] for x in of(lines, "C")}
    makeup = {x.split()[2]: x.split()[3:] for x in of(lines, "m")}
    # the two largest only; kernel summed from its parts where memory.stat has no `kernel`
    assert set(makeup) == {ids["/system.slice"], ids["/system.slice/ci-job.scope"]}
    assert makeup[ids["/system.slice"]] == [str(120 << 10), str(560 << 10), str(500 << 10),
                                           str(1024 + 2048 + 7168), "64"]
    assert makeup[ids["/system.slice/ci-job.scope"]][3] == str(20 << 10)
    assert lines.index(of(lines, "m")[0]) > lines.index(of(lines, "c")[-1])

    for _ in range(3):  # the third largest and the root are never read between status ticks
        lines = clock.tick(s, seconds=1)
        log += lines
        assert not of(lines, "m")
    lines = clock.tick(s, seconds=11)
    log += lines
    assert not of(lines, "m")  # nothing moved: nothing written
    # grown by a quarter and 16 MiB since its last reading: read at once, not 10 s later
    _stat(cg, "system.slice/ci-job.scope", anon=100 << 10, file=730 << 10, shmem=700 << 10,
          kernel=20 << 10, sock=0)
    _cg(cg, "system.slice/ci-job.scope", 850 << 20)
    lines = clock.tick(s, seconds=1)
    log += lines
    assert [x.split()[2:5] for x in of(lines, "m")] == [
        [ids["/system.slice/ci-job.scope"], str(100 << 10), str(730 << 10)]]
    _cg(cg, "system.slice/ci-job.scope", 860 << 20)  # 10 MiB more: waits for a status tick
    lines = clock.tick(s, seconds=1)
    log += lines
    assert not of(lines, "m") and of(lines, "c")

    recording = tmp_path / "rec"
    recording.mkdir()
    (recording / "memtrail-20231114T221321Z-000.log").write_text(
        log[0] + "\n".join(log[1:]) + "\n")
    rep = analyze([str(recording)])
    assert rep["reading"]["unknown_records"] == 0
    job = [u for u in rep["units"] if u["path"] == "/system.slice/ci-job.scope"][0]
    assert job["peak_bytes"] == 860 * MiB
    assert job["makeup"]["shmem_bytes"] == 700 * MiB and job["makeup"]["file_bytes"] == 30 * MiB
    text = render_text(rep)
    assert ("(anon 100 MiB, shmem/tmpfs 700 MiB, page cache 30.0 MiB, kernel 20.0 MiB, network "
            "buffers 0 B; read 1 s before the peak)") in text


def _job(tmp_path, hier: str, stat: str, files: dict = None) -> S.CgroupTracker:
    """A one-cgroup tree (`/job`) with that memory.stat and files, and its tracker."""
    root = tmp_path / hier
    (root / "job").mkdir(parents=True)
    (root / "job" / "memory.stat").write_text(stat)
    for name, text in (files or {}).items():
        (root / "job" / name).write_text(text)
    return S.CgroupTracker(str(root), hier, 2, 10)


def test_v1_make_up_comes_from_its_hierarchical_totals_and_kmem(tmp_path):
    tracker = _job(tmp_path, "v1", "cache 1\nrss 2\nshmem 3\ntotal_cache 419430400\n"
                   "total_rss 104857600\ntotal_shmem 314572800\ntotal_mapped_file 0\n",
                   {"memory.kmem.usage_in_bytes": "8388608\n"})
    root = tmp_path / "v1"
    group = S.Cgroup(1, "/job", -1)
    assert tracker.read_makeup(group) == (100 << 10, 400 << 10, 300 << 10, 8 << 10, None)
    (root / "job" / "memory.stat").write_text("total_rss x\n")  # hostile: not a number
    assert tracker.read_makeup(group) == (None, None, None, 8 << 10, None)
    (root / "job" / "memory.stat").unlink()
    assert tracker.read_makeup(group) is None


def test_a_unit_s_make_up_is_the_one_read_by_its_peak(tmp_path):
    """An `m` after the peak (lower, later) is not the peak's; one before it is kept when the
    peak's own tick has none. Hostile `m` lines (no such cgroup, 4000 digits, `1_000`, `-`)
    cost their values, never the report."""
    head = ('H 1700000000.000 memtrail 1 {"format":1,"host":"h","boot_id":"b","started":'
            '1700000000.0,"pid":1,"interval_s":1.0,"fields":{"s":["mem_total","mem_free",'
            '"mem_available"],"c":["cgid","current"],"m":["cgid","anon","file","shmem",'
            '"kernel","sock"]}}')
    lines = [head,
             "s 1700000001.000 8388608 100 6000000", 'C 1700000001.000 1 {"path":"/job"}',
             "c 1700000001.000 1 102400", "m 1700000001.000 1 90000 10000 4000 400 -",
             "s 1700000002.000 8388608 100 6000000", "c 1700000002.000 1 204800",
             "s 1700000003.000 8388608 100 6000000", "c 1700000003.000 1 51200",
             "m 1700000003.000 1 40000 10000 0 1000 0",
             "m 1700000003.000 7 1 1 1 1 1", "m 1700000003.000 1 " + "9" * 4000,
             "m 1700000003.000 1 1_000 - - - -",
             "s 1700000004.000 8388608 100 6000000"]
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "memtrail-20231114T221320Z-000.log").write_text("\n".join(lines) + "\n")
    rep = analyze([str(rec)])
    job = rep["units"][0]
    assert job["peak_bytes"] == 200 * MiB and job["makeup"]["time_unix"] == 1700000001.0
    assert job["makeup"]["anon_bytes"] == 90000 << 10
    assert job["makeup"]["file_bytes"] == 6000 << 10  # the page cache besides shmem
    assert "(anon 87.9 MiB, shmem/tmpfs 3.9 MiB, page cache 5.9 MiB, kernel 400 KiB; read 1 s " \
           "before the peak)" in render_text(rep)
    assert fmt_bytes(10 ** 4000) == "-"  # whatever reaches a view, it is not a traceback


def test_make_up_reads_follow_growth_not_the_logged_figure(fakeproc, tmp_path):
    """With a change threshold of 64 MiB a cgroup that grew 20 MiB keeps its last logged
    usage; its reading must still count from what it has now, or it is read every tick. The
    root is never read for growth."""
    cg = _tree(tmp_path)
    (cg / "memory.current").write_text(f"{1 << 30}\n")  # a tracked root
    (cg / "memory.stat").write_text(f"anon {1 << 30}\n")
    s = _sampler(fakeproc, tmp_path, cg, "--cgroup-stat-n", "2", "--rss-delta", "64M")
    reads = []
    real = s.cgroups.read_makeup

    def counted(group):
        reads.append(group.path)
        return real(group)
    s.cgroups.read_makeup = counted
    clock = Clock()
    clock.tick(s, new_segment=True)
    reads.clear()
    _cg(cg, "user.slice", 30 << 20)  # 10 -> 30 MiB: grown, but under the 64 MiB threshold
    (cg / "memory.current").write_text(f"{3 << 30}\n")  # the root triples
    clock.tick(s, seconds=1)
    assert reads == ["/user.slice"]
    for _ in range(3):
        clock.tick(s, seconds=1)
    assert reads == ["/user.slice"]


def test_v2_kernel_memory_without_kernel_or_slab_sums_slab_s_halves(tmp_path):
    tracker = _job(tmp_path, "v2", "anon 1048576\nfile 0\nshmem 0\nkernel_stack 16384\n"
                   "pagetables 32768\nslab_reclaimable 65536\nslab_unreclaimable 131072\n"
                   "sock 0\n")
    assert tracker.read_makeup(S.Cgroup(1, "/job", -1)) == (1024, 0, 0, 16 + 32 + 64 + 128, 0)
