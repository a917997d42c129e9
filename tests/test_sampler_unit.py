"""The sampler against fixture /proc trees: what each situation writes, line by line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLER

from memtrail import reader
from memtrail import sampler as S

FIXTURES = Path(__file__).parent / "fixtures"


def make(fakeproc, tmp_path, *extra):
    cfg = S.parse_args(["--dir", str(tmp_path / "log"), "--proc-root", str(fakeproc.root),
                        "--kmsg", "", "--no-mlock", "--no-oom-adj", "--no-cgroups", "--quiet",
                        "--journal", "no", *extra])
    S.check_log_dir(cfg.dir)
    return S.Sampler(cfg)


class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0

    def tick(self, sampler, seconds=1.0, new_segment=False):
        self.t += seconds
        data = sampler.tick(self.t, self.t, time.process_time(), new_segment)
        return data.decode("ascii").splitlines()


def of(lines, rtype):
    return [line for line in lines if line.split(" ", 1)[0] == rtype]


def events(lines, kind):
    out = []
    for line in of(lines, "E"):
        parts = line.split(" ", 3)
        if parts[2] == kind:
            out.append(json.loads(parts[3]))
    return out


# --- processes -----------------------------------------------------------------------------

def test_first_tick_writes_system_identities_and_sizes(fakeproc, tmp_path):
    fakeproc.add(100, ["/usr/bin/python3", "/usr/bin/nova-api", "--password=hunter2"],
                 rss_kib=40960, shared_kib=8192)
    fakeproc.add(101, ["postgres: checkpointer"], rss_kib=20480)
    fakeproc.add(3, [], comm="kworker/0:1", kthread=True, ppid=2)
    s = make(fakeproc, tmp_path)
    lines = Clock().tick(s, new_segment=True)
    assert lines[0].startswith("s ")
    assert len(lines[0].split()) == 2 + len(S.FIELDS["s"])
    assert of(lines, "K")[0].split()[2:4] == ["2", "0"]
    idents = {line.split()[2]: line for line in of(lines, "P")}
    assert set(idents) == {"100", "101"}  # the kernel thread is skipped
    obj = json.loads(idents["100"][idents["100"].index("{"):])
    assert obj["cmd"] == ["/usr/bin/python3", "/usr/bin/nova-api", "--password=***"]
    assert obj["comm"] == "python3" and obj["cg"] == "/system.slice/test.service"
    assert idents["100"].split()[3:6] == ["1000", "1", str(os.getuid())]
    assert "p 1700000001.000 100 40960 8192" in lines


def test_rss_change_is_written_only_past_the_threshold(fakeproc, tmp_path):
    fakeproc.add(100, ["app"], rss_kib=102400)
    s = make(fakeproc, tmp_path)  # threshold: max(1 MiB, 2% of 100 MiB = 2 MiB)
    clock = Clock()
    clock.tick(s, new_segment=True)
    fakeproc.set_rss(100, 102400 + 1024)
    assert of(clock.tick(s), "p") == []
    fakeproc.set_rss(100, 102400 + 4096)
    assert [line.split()[2:4] for line in of(clock.tick(s), "p")] == [["100", "106496"]]
    assert of(clock.tick(s), "p") == []  # the band moved with the written value


def test_exit_and_appearance(fakeproc, tmp_path):
    fakeproc.add(100, ["a"])
    fakeproc.add(101, ["b"])
    s = make(fakeproc, tmp_path)
    clock = Clock()
    clock.tick(s, new_segment=True)
    fakeproc.remove(100)
    fakeproc.add(102, ["c", "--token", "t0ps3cret"], start=2000)
    lines = clock.tick(s)
    assert [line.split()[2] for line in of(lines, "X")] == ["100"]
    new = of(lines, "P")
    assert len(new) == 1 and new[0].split()[2:4] == ["102", "2000"]
    assert '"cmd":["c","--token","***"]' in new[0]
    assert "100" not in s.procs and len(s.procs) == 2


def test_process_that_execs_after_first_sight_gets_a_new_identity(fakeproc, tmp_path):
    s = make(fakeproc, tmp_path)
    clock = Clock()
    clock.tick(s, new_segment=True)
    fakeproc.add(200, ["bash", "-c", "make"], start=5000)
    assert len(of(clock.tick(s), "P")) == 1
    fakeproc.add(200, ["make", "-j8"], start=5000, comm="make")  # same process, after exec
    again = of(clock.tick(s), "P")
    assert len(again) == 1 and '"cmd":["make","-j8"]' in again[0]
    assert of(clock.tick(s), "P") == []  # looked at once, not every tick


def test_periodic_keyframe_writes_every_process(fakeproc, tmp_path):
    for pid in (100, 101, 102):
        fakeproc.add(pid, [f"w{pid}"])
    s = make(fakeproc, tmp_path, "--keyframe", "10")
    clock = Clock()
    clock.tick(s, new_segment=True)
    assert of(clock.tick(s), "p") == []
    lines = clock.tick(s, seconds=10)
    assert json.loads(of(lines, "K")[0].split(" ", 4)[4]) == {"reason": "periodic"}
    assert len(of(lines, "p")) == 3 and of(lines, "P") == []


def test_new_segment_repeats_every_identity(fakeproc, tmp_path):
    fakeproc.add(100, ["a"])
    fakeproc.add(101, ["b"])
    s = make(fakeproc, tmp_path)
    clock = Clock()
    clock.tick(s, new_segment=True)
    lines = clock.tick(s, new_segment=True)
    assert sorted(line.split()[2] for line in of(lines, "P")) == ["100", "101"]
    assert json.loads(of(lines, "K")[0].split(" ", 4)[4])["reason"] == "segment"


def test_unreadable_process_files_never_stop_a_tick(fakeproc, tmp_path):
    fakeproc.add(100, ["a"])
    fakeproc.add(101, ["b"])
    (fakeproc.root / "101" / "stat").unlink()  # vanished between listdir and read
    (fakeproc.root / "notapid").mkdir()
    s = make(fakeproc, tmp_path)
    lines = Clock().tick(s, new_segment=True)
    assert [line.split()[2] for line in of(lines, "P")] == ["100"]


def test_non_utf8_empty_and_huge_command_lines(fakeproc, tmp_path):
    fakeproc.add(100, ["caf\udce9", "x"])  # a Latin-1 byte that is not UTF-8
    fakeproc.add(101, [], comm="zombie")
    fakeproc.add(102, ["big", "a" * 10000])
    s = make(fakeproc, tmp_path)
    lines = Clock().tick(s, new_segment=True)
    objs = {line.split()[2]: json.loads(line[line.index("{"):]) for line in of(lines, "P")}
    assert objs["100"]["cmd"][0] == "caf\udce9"
    assert objs["101"]["cmd"] == [] and objs["101"]["comm"] == "zombie"
    assert objs["102"]["cmd_truncated"] is True
    assert len("".join(objs["102"]["cmd"])) < 4096
    assert all(ord(c) < 128 for c in "\n".join(lines))


# --- system, rate, lows, slab ----------------------------------------------------------------

def test_trouble_ticks_faster_and_recovery_returns(fakeproc, tmp_path):
    fakeproc.add(100, ["a"])
    s = make(fakeproc, tmp_path, "--interval", "1", "--fast-interval", "0.1")
    clock = Clock()
    clock.tick(s, new_segment=True)
    fakeproc.set_meminfo(total=8 << 20, avail=(8 << 20) // 20)  # 5% available
    lines = clock.tick(s)
    assert events(lines, "rate")[0]["interval_ms"] == 100
    assert s.interval == pytest.approx(0.1)
    assert lines[0].split()[2 + S.S_INDEX["interval_ms"]] == "100"  # in the s line
    fakeproc.set_meminfo(total=8 << 20, avail=(8 << 20) // 2)
    lines = clock.tick(s, seconds=0.1)
    assert events(lines, "rate")[0]["interval_ms"] == 1000


def test_psi_full_stall_is_trouble(fakeproc, tmp_path):
    s = make(fakeproc, tmp_path)
    clock = Clock()
    clock.tick(s, new_segment=True)
    fakeproc.set_psi(400_000, 300_000)  # 30% of the last second fully stalled
    assert "PSI full" in events(clock.tick(s), "rate")[0]["reason"]


def test_new_low_writes_a_snapshot_with_hysteresis(fakeproc, tmp_path):
    fakeproc.add(100, ["a"], rss_kib=50000)
    s = make(fakeproc, tmp_path)
    clock = Clock()
    clock.tick(s, new_segment=True)
    total = 8 << 20
    fakeproc.set_meminfo(total=total, avail=(6 << 20) - total // 200)  # -0.5%: not yet
    assert events(clock.tick(s), "low") == []
    fakeproc.set_meminfo(total=total, avail=(6 << 20) - total // 50)  # -2%: a new low
    lines = clock.tick(s)
    assert events(lines, "low")[0]["available_kib"] == (6 << 20) - total // 50
    assert json.loads(of(lines, "K")[0].split(" ", 4)[4])["reason"] == "low"
    assert of(lines, "d") and of(lines, "D") and of(lines, "p")
    assert events(clock.tick(s), "low") == []


def test_slab_top_caches_when_slab_moves(fakeproc, tmp_path):
    fakeproc.write_slabinfo({"dentry": 40000, "kmalloc-64": 8000, "inode_cache": 20000})
    s = make(fakeproc, tmp_path)
    clock = Clock()
    first = of(clock.tick(s, new_segment=True), "b")
    assert first[0].split()[2:] == ["dentry=40000", "inode_cache=20000", "kmalloc-64=8000"]
    assert of(clock.tick(s), "b") == []
    fakeproc.write_slabinfo({"dentry": 600000, "kmalloc-64": 8000})
    fakeproc.set_meminfo(slab=700000)
    assert of(clock.tick(s), "b")[0].split()[2] == "dentry=600000"


def test_unreadable_slabinfo_is_skipped_with_one_warning(fakeproc, tmp_path):
    s = make(fakeproc, tmp_path)  # the fixture has no slabinfo
    clock = Clock()
    first = clock.tick(s, new_segment=True)
    assert "slabinfo" in events(first, "warn")[0]["msg"]
    assert events(clock.tick(s, new_segment=True), "warn") == []


def test_tiered_detail_for_top_processes(fakeproc, tmp_path):
    for pid in range(100, 110):
        fakeproc.add(pid, [f"w{pid}"], rss_kib=10000 * (pid - 99),
                     status={"VmSwap": pid, "VmLck": 4})
    s = make(fakeproc, tmp_path, "--top-n", "3", "--pss-top-n", "2", "--pss-programs", "1",
             "--status-every", "10", "--pss-every", "60")
    clock = Clock()
    lines = clock.tick(s, new_segment=True)
    assert sorted(line.split()[2] for line in of(lines, "d")) == ["107", "108", "109"]
    assert sorted(line.split()[2] for line in of(lines, "D")) == ["108", "109"]
    d109 = [line for line in of(lines, "d") if line.split()[2] == "109"][0]
    assert d109.split()[3:] == ["97952", "2048", "0", "109", "4"]
    assert of(clock.tick(s), "d") == []  # not due yet


# --- cgroups -----------------------------------------------------------------------------------

def _cg(root: Path, rel: str, current: int, oom_kill: int = 0) -> None:
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    for name, text in (("memory.current", f"{current}\n"),
                       ("memory.events", f"low 0\nhigh 0\nmax 0\noom {oom_kill}\n"
                                         f"oom_kill {oom_kill}\n"),
                       ("memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"
                                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n")):
        with open(d / name, "r+" if (d / name).exists() else "w") as fh:
            fh.write(text)
            fh.truncate()


def test_cgroup_v2_units(fakeproc, tmp_path):
    cg = tmp_path / "cgroup"
    (cg).mkdir()
    (cg / "cgroup.controllers").write_text("cpu memory pids\n")
    _cg(cg, "system.slice", 300 << 20)
    _cg(cg, "system.slice/web.service", 200 << 20)
    cfg_args = ["--dir", str(tmp_path / "log"), "--proc-root", str(fakeproc.root), "--kmsg", "",
                "--no-mlock", "--no-oom-adj", "--quiet", "--journal", "no",
                "--cgroup-root", str(cg)]
    cfg = S.parse_args(cfg_args)
    S.check_log_dir(cfg.dir)
    s = S.Sampler(cfg)
    clock = Clock()
    lines = clock.tick(s, new_segment=True)
    paths = {json.loads(line[line.index("{"):])["path"]: line.split()[2] for line in of(lines, "C")}
    assert set(paths) == {"/system.slice", "/system.slice/web.service"}
    web = paths["/system.slice/web.service"]
    assert f"c 1700000001.000 {web} 204800 - 0 0 7 3" in lines
    _cg(cg, "system.slice/web.service", 200 << 20, oom_kill=1)
    fakeproc.set_vmstat(oom_kill=1)
    lines = clock.tick(s)
    assert events(lines, "oom_counter") == [{"delta": 1, "total": 1}]
    assert events(lines, "cgroup_oom")[0]["path"] == "/system.slice/web.service"
    for name in ("memory.current", "memory.events", "memory.pressure"):
        (cg / "system.slice/web.service" / name).unlink()
    (cg / "system.slice/web.service").rmdir()
    lines = clock.tick(s, seconds=11)  # rescans every 10 s
    assert f"G 1700000013.000 {web}" in lines


# --- kernel log -------------------------------------------------------------------------------

@pytest.mark.parametrize("sample, expect", [
    ("oom-6.1-global.txt", {"pid": 4242, "name": "python3", "anon_kib": 6123840,
                            "file_kib": 168, "shmem_kib": 0, "uid": 0,
                            "constraint": "CONSTRAINT_NONE",
                            "task_memcg": "/user.slice/user-0.slice/session-3.scope"}),
    ("oom-6.1-memcg.txt", {"pid": 5151, "name": "python3", "anon_kib": 198476,
                           "constraint": "CONSTRAINT_MEMCG", "oom_memcg": "/memtrail-hog",
                           "memcg_oom": True}),
    ("oom-4.9-legacy.txt", {"pid": 777, "name": "java", "anon_kib": 7340032,
                            "file_kib": 2048}),
    ("oom-odd-name.txt", {"pid": 31337, "name": "Web Content", "uid": 1000,
                          "shmem_kib": 12}),
])
def test_oom_parser_on_real_kernel_messages(sample, expect):
    parser = S.OomParser()
    found = []
    for line in (FIXTURES / "kmsg" / sample).read_text().splitlines():
        event = parser.feed(line.split(";", 1)[1])
        if event:
            found.append(event)
    assert len(found) == 1, found  # the oom_reaper line is not a second kill
    for key, value in expect.items():
        assert found[0][key] == value


def test_oom_event_joins_the_command_line_the_sampler_knew(fakeproc, tmp_path):
    fakeproc.add(5151, ["python3", "hog.py", "--size", "1G"], rss_kib=198000)
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("")
    s = make(fakeproc, tmp_path, "--kmsg", str(kmsg))
    clock = Clock()
    clock.tick(s, new_segment=True)
    kmsg.write_text((FIXTURES / "kmsg" / "oom-6.1-memcg.txt").read_text())
    fakeproc.remove(5151)
    lines = clock.tick(s)
    oom = events(lines, "oom_kill")
    assert oom[0]["cmd"] == ["python3", "hog.py", "--size", "1G"]
    assert oom[0]["oom_memcg"] == "/memtrail-hog"
    assert lines.index(of(lines, "E")[0]) < lines.index(of(lines, "X")[0])


# --- settings and bad input ----------------------------------------------------------------------

def test_sizes_and_durations():
    assert S.parse_size("100M") == 100 << 20 and S.parse_size("4096") == 4096
    assert S.parse_size("1.5GiB") == 3 << 29
    assert S.parse_duration("500ms") == 0.5 and S.parse_duration("7d") == 7 * 86400
    with pytest.raises(ValueError):
        S.parse_size("lots")


def test_environment_sets_defaults_and_flags_win(monkeypatch):
    monkeypatch.setenv("MEMTRAIL_INTERVAL", "0.5")
    monkeypatch.setenv("MEMTRAIL_MAX_TOTAL", "1G")
    monkeypatch.setenv("MEMTRAIL_NO_REDACT", "yes")
    cfg = S.parse_args(["--max-total", "20M"])
    assert cfg.interval == 0.5 and cfg.max_total == 20 << 20 and cfg.no_redact is True


@pytest.mark.parametrize("args, env, needle", [
    (["--interval", "fast"], {}, "not a duration"),
    (["--bogus"], {}, "unrecognized arguments"),
    ([], {"MEMTRAIL_INTERVAL": "-1"}, "MEMTRAIL_INTERVAL"),
])
def test_bad_settings_give_one_clear_line(tmp_path, args, env, needle):
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(tmp_path),
                          *args], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 2
    assert needle in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("argv, expect", [
    (["--password=x"], ["--password=***"]),
    (["--password", "x", "y"], ["--password", "***", "y"]),
    (["MYSQL_ROOT_PASSWORD=x"], ["MYSQL_ROOT_PASSWORD=***"]),
    (["--api-key=k", "--client-secret", "s"], ["--api-key=***", "--client-secret", "***"]),
    (["git", "clone", "https://bob:pa55@example.com/r.git"],
     ["git", "clone", "https://bob:***@example.com/r.git"]),
    (["curl", "-H", "Authorization: Bearer abc"], ["curl", "-H", "Authorization: ***"]),
    (["--env", '{"API_TOKEN": "t", "HOME": "/root"}'],
     ["--env", '{"API_TOKEN": "***", "HOME": "/root"}']),
    # look-alikes stay: these are not secrets
    (["--password-file=/run/pw", "--no-password", "x", "--pass-through", "--tokenizer=bpe"],
     ["--password-file=/run/pw", "--no-password", "x", "--pass-through", "--tokenizer=bpe"]),
    (["a=b", "--pass=", "https://host/x"], ["a=b", "--pass=", "https://host/x"]),
])
def test_redaction(argv, expect):
    assert S.redact(argv) == expect


def test_redaction_can_be_turned_off(fakeproc, tmp_path):
    fakeproc.add(100, ["db", "--password=x"])
    s = make(fakeproc, tmp_path, "--no-redact")
    assert '"--password=x"' in of(Clock().tick(s, new_segment=True), "P")[0]


def test_parse_stat_with_hostile_comm():
    comm, ppid, flags, start, thread = S.parse_stat(
        b"42 (a) b (c)) R 7 0 0 0 0 4194560 " + b"0 " * 12 + b"999 0 0\n")
    assert (comm, ppid, flags, start, thread) == ("a) b (c)", 7, 4194560, 999, False)


def test_parse_stat_tells_a_thread_by_its_exit_signal():
    """A thread's own pid answers in /proc though no listing shows it; its exit_signal (field
    38) is -1, a process's is SIGCHLD or 0. Read from this process's own threads."""
    import threading
    ready, done = threading.Event(), threading.Event()
    th = threading.Thread(target=lambda: (ready.set(), done.wait()))
    th.start()
    ready.wait()
    try:
        mine = S.parse_stat(Path(f"/proc/{os.getpid()}/stat").read_bytes())
        its = S.parse_stat(Path(f"/proc/{th.native_id}/stat").read_bytes())
    finally:
        done.set()
        th.join()
    assert mine[4] is False and its[4] is True
    assert its[3] > 0 and mine[1] == os.getppid()


def test_cgroup_line_choice():
    hybrid = b"4:memory:/process_api/abc\n1:cpu:/\n0::/\n"
    assert S.parse_cgroup(hybrid) == ("/process_api/abc", "")
    assert S.parse_cgroup(b"0::/system.slice/web.service\n") == ("/system.slice/web.service", "")
    # A hybrid host whose v1 memory path is another one: both (an OOM kill names the v1 one)
    both = b"9:memory:/docker/abc\n1:name=systemd:/x\n0::/system.slice/docker-abc.scope\n"
    assert S.parse_cgroup(both) == ("/system.slice/docker-abc.scope", "/docker/abc")
    same = b"9:memory:/system.slice/web.service\n0::/system.slice/web.service\n"
    assert S.parse_cgroup(same) == ("/system.slice/web.service", "")


def test_a_hybrid_hosts_own_memory_cgroup_is_recorded_beside_the_v2_path(fakeproc, tmp_path):
    """docs/format.md: `mcg` in a `P` record is the v1 memory cgroup when it is not `cg`
    (what a hybrid host's OOM kill names), and is left out otherwise."""
    fakeproc.add(100, ["app"])
    fakeproc._write("100/cgroup", "9:memory:/docker/abc\n0::/system.slice/docker-abc.scope\n")
    fakeproc.add(101, ["web"])
    s = make(fakeproc, tmp_path)
    objs = {int(line.split(" ")[2]): json.loads(line.split(" ", 6)[6])
            for line in of(Clock().tick(s, new_segment=True), "P")}
    assert objs[100]["cg"] == "/system.slice/docker-abc.scope"
    assert objs[100]["mcg"] == "/docker/abc"
    assert objs[101]["cg"] == "/system.slice/test.service" and "mcg" not in objs[101]


def test_written_lines_read_back_through_the_reader(fakeproc, tmp_path):
    fakeproc.add(100, ["a"], rss_kib=4096)
    s = make(fakeproc, tmp_path)
    data = s.header(1.0, 1.0, "x") + S.Sampler.tick(s, 1.0, 1.0, 0.0, True).decode()
    path = tmp_path / "memtrail-20250101T000000Z-000.log"
    path.write_text(data)
    stats = reader.ReadStats()
    recs = list(reader.read(str(path), stats))
    assert stats.problems == 0
    srec = [r for r in recs if r.type == "s"][0]
    assert srec.int("mem_total") == 8 << 20 and srec.int("nprocs") == 1
    assert [r.int("rss") for r in recs if r.type == "p"] == [4096]


def test_systemd_logs_directory_may_be_its_own_symlink(tmp_path, monkeypatch):
    real = tmp_path / "private" / "memtrail"
    real.mkdir(parents=True)
    (tmp_path / "memtrail").symlink_to(real)
    monkeypatch.setenv("LOGS_DIRECTORY", str(tmp_path / "memtrail"))
    cfg = S.parse_args([])
    assert cfg.dir == str(real)
    S.check_log_dir(cfg.dir)  # accepted: systemd made the link
    with pytest.raises(S.Fatal, match="symbolic link"):
        S.check_log_dir(str(tmp_path / "memtrail"))  # given by hand: refused


def test_help_and_version_work_standalone():
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0
    assert "MEMTRAIL_RSS_DELTA" in run.stdout and "--low-pct PCT" in run.stdout
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--version"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout.startswith("memtrail sampler ")


def test_wall_clock_jumps_are_recorded_not_followed(fakeproc, tmp_path):
    s = make(fakeproc, tmp_path)
    wall, mono = 1_700_000_000.0, 500.0
    s.tick(wall, mono, time.process_time(), True)
    lines = s.tick(wall + 3601.0, mono + 1.0, time.process_time(), False).decode().splitlines()
    assert events(lines, "clock") == [{"jump_s": 3600.0}]
    assert events(lines, "gap") == []  # the monotonic clock says one interval passed
    lines = s.tick(wall + 3602.0, mono + 7.0, time.process_time(), False).decode().splitlines()
    assert events(lines, "gap")[0]["lost_ticks"] == 5  # stalled (SIGSTOP, suspend): a gap


def test_in_a_pid_namespace_pid_2_and_its_children_are_processes(fakeproc, tmp_path):
    fakeproc.add(1, ["/sbin/init"], ppid=0)
    fakeproc.add(2, ["sh", "-c", "serve"], ppid=0)  # pid 2 of a container
    fakeproc.add(7, ["serve"], ppid=2)
    fakeproc.add(9, [], comm="kworker/0:2", kthread=True, ppid=2)
    s = make(fakeproc, tmp_path)
    lines = Clock().tick(s, new_segment=True)
    assert sorted(line.split()[2] for line in of(lines, "P")) == ["1", "2", "7"]


def test_iterator_backed_files_are_read_to_the_end(tmp_path):
    """slabinfo, vmstat and mountinfo come about a page per read: a FIFO mimics that."""
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    body = b"".join(b"cache%04d 1 2 3\n" % i for i in range(2000))

    def writer():
        with open(fifo, "wb", buffering=0) as fh:
            for i in range(0, len(body), 4000):
                fh.write(body[i:i + 4000])
    t = threading.Thread(target=writer)
    t.start()
    data = S.read_file(str(fifo), 1 << 20, whole=True)
    t.join()
    assert data == body


def test_write_all_gathers_sections_through_partial_writes():
    """A pipe takes 64 KiB at a time: every section must still arrive whole and in order."""
    import threading

    parts = [b"a" * 300_000, bytearray(b"b" * 5), b"", b"c" * 700_001]
    rfd, wfd = os.pipe()
    got = []

    def drain():
        while True:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                return
            got.append(chunk)
    t = threading.Thread(target=drain)
    t.start()
    S.write_all(wfd, parts)
    os.close(wfd)
    t.join()
    os.close(rfd)
    assert b"".join(got) == b"".join(parts)


def _kv_by_lines(data: bytes, keys) -> list:
    """The line-by-line parse parse_kv_kib replaced (the last line of a key wins; the kernel
    never repeats one): what it must still give."""
    found = {}
    for line in data.split(b"\n"):
        name, sep, rest = line.partition(b":")
        if sep and name in keys:
            parts = rest.split()
            if parts:
                found[name] = int(parts[0])
    return [found.get(k) for k in keys]


def test_parse_kv_kib_takes_whole_names_only():
    rollup = (b"55963e245000-7ffd2bc11000 ---p 00000000 00:00 0   [rollup]\n"
              b"Rss:                1740 kB\nPss:                 861 kB\n"
              b"Pss_Dirty:           112 kB\nPss_Anon:            112 kB\n"
              b"Pss_File:            749 kB\nSwap:                  0 kB\n"
              b"SwapPss:               7 kB\nLocked:                0 kB")  # no final newline
    assert S.parse_kv_kib(rollup, S.SMAPS_KEYS) == [861, 112, 749, None, 0, 7]
    # A name is escaped by the kernel, but a fixture or an old kernel may hold anything: a
    # key inside a value, or a line that is only a key, is not a value.
    status = (b"Name:\tRssAnon: 999 kB\\nx\nUmask:\t0022\nRssAnon:\t  4 kB\n"
              b"RssFile:\nRssShmem:\t0 kB\nVmLck:\t12 kB\n")
    assert S.parse_kv_kib(status, S.STATUS_KEYS) == [4, None, 0, None, 12]
    assert S.parse_kv_kib(b"VmLck: 5 kB\n", S.STATUS_KEYS) == [None] * 4 + [5]  # first line
    assert S.parse_kv_kib(b"", S.SMAPS_KEYS) == [None] * 6


def test_parse_kv_kib_agrees_with_a_line_by_line_parse_on_live_files():
    for path, keys in (("/proc/self/smaps_rollup", S.SMAPS_KEYS),
                       ("/proc/self/status", S.STATUS_KEYS),
                       ("/proc/meminfo", tuple(k for k, _n in S.MEMINFO_KEYS))):
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        got = S.parse_kv_kib(data, keys)
        assert got == _kv_by_lines(data, keys)
        assert any(v is not None for v in got), path


def test_an_exec_of_the_same_binary_is_seen_in_the_largest_processes(fakeproc, tmp_path):
    """A launcher that execs the interpreter it already runs (`python3 launch.py` ->
    `python3 -m server`) keeps statm's code size. Its stack moves (/proc/PID/stat field 28),
    and the next status tick reads its identity again. A program that only rewrites its
    title (postgres, setproctitle) keeps its stack and gets no new `P`."""
    fakeproc.add(300, ["/usr/bin/python3", "launch.py"], rss_kib=90000, stack=0x7ffd0000f000)
    fakeproc.add(301, ["postgres: checkpointer"], rss_kib=80000, stack=0x7ffc1000e000)
    fakeproc.add(302, ["small"], rss_kib=1000, stack=0x7ffe2000d000)
    s = make(fakeproc, tmp_path, "--top-n", "2", "--status-every", "10")
    clock = Clock()
    clock.tick(s, new_segment=True)
    fakeproc.exec_same_binary(300, ["/usr/bin/python3", "-m", "server"], 0x7fff3000c000)
    fakeproc._write("301/cmdline", b"postgres: checkpointer performing restartpoint\0")
    seen = []
    for _ in range(10):
        seen += of(clock.tick(s), "P")
    [ident] = seen  # one status tick in these ten: 300's new identity, not 301's title
    assert ident.split()[2:4] == ["300", "1000"]
    assert json.loads(ident.split(" ", 6)[6])["cmd"] == ["/usr/bin/python3", "-m", "server"]
    for _ in range(10):
        assert of(clock.tick(s), "P") == []  # said once

    # One that exec'd while too small to be looked at is read again when it joins the top N
    fakeproc.exec_same_binary(302, ["/usr/bin/python3", "-m", "worker"], 0x7ffa4000b000)
    for _ in range(10):
        assert of(clock.tick(s), "P") == []
    fakeproc.set_rss(302, 120000)
    seen = []
    for _ in range(10):
        seen += of(clock.tick(s), "P")
    assert [line.split()[2] for line in seen] == ["302"]
    assert json.loads(seen[0].split(" ", 6)[6])["cmd"][-1] == "worker"

    # A title rewriter joining the top N: its current title is written, its PSS state kept
    fakeproc.add(303, ["postgres: walwriter"], rss_kib=500, stack=0x7ff95000a000)
    for _ in range(10):
        clock.tick(s)
    st = s.procs["303"]
    st.prog, st.pss = "postgres", b"1 2 3"  # as the PSS tier leaves a member it read
    fakeproc._write("303/cmdline", b"postgres: walwriter flushing\0")
    fakeproc.set_rss(303, 200000)
    seen = []
    for _ in range(10):
        seen += of(clock.tick(s), "P")
    assert [json.loads(line.split(" ", 6)[6])["cmd"] for line in seen] == [
        ["postgres: walwriter flushing"]]
    assert (st.prog, st.pss) == ("postgres", b"1 2 3")


def test_a_stack_the_kernel_hides_tells_nothing(fakeproc, tmp_path):
    """Without the right to trace a process the kernel shows its stack as 0: no exec is told
    from it (and the identity is not read again at every status tick)."""
    fakeproc.add(300, ["/usr/bin/python3", "launch.py"], rss_kib=90000)
    s = make(fakeproc, tmp_path, "--top-n", "2", "--status-every", "10")
    clock = Clock()
    clock.tick(s, new_segment=True)
    calls = []
    real = s._reidentify
    s._reidentify = lambda *a: calls.append(a[0].pid) or real(*a)
    fakeproc.exec_same_binary(300, ["/usr/bin/python3", "-m", "server"], 0)
    for _ in range(30):
        assert of(clock.tick(s), "P") == []
    assert calls == []


def test_a_process_that_execs_later_in_life_gets_its_new_identity(fakeproc, tmp_path):
    """A shell that waits, then execs its server: statm's code size (`text`) changes with the
    new image, and the sampler writes the process's new identity the same tick."""
    fakeproc.add(300, ["/bin/sh", "/wait-for-db.sh"], rss_kib=2000)
    s = make(fakeproc, tmp_path)
    clock = Clock()
    clock.tick(s, new_segment=True)
    for rss in (2100, 2400, 2500):  # the shell's own changes: the same code size
        fakeproc.set_rss(300, rss)
        assert of(clock.tick(s), "P") == []
    pk = fakeproc.page_kib
    fakeproc._write("300/cmdline", b"/usr/bin/postgres\0-D\0/data\0")
    fakeproc._write("300/statm", f"{400000 // pk} {800000 // pk} {2048 // pk} 1700 0 9 0\n")
    lines = clock.tick(s)
    [ident] = of(lines, "P")
    assert ident.split()[2:4] == ["300", "1000"]  # the same pid and start: the same process
    assert json.loads(ident.split(" ", 6)[6])["cmd"] == ["/usr/bin/postgres", "-D", "/data"]
    assert lines.index(ident) < lines.index(of(lines, "p")[0])  # before this tick's RSS
    assert of(clock.tick(s), "P") == []  # said once


def test_an_exiting_process_is_not_taken_for_an_exec(fakeproc, tmp_path):
    """A zombie's statm reads zeros (its code size too) and its command line is empty: its
    last identity stands until its `X`, rather than a new `P` with no command line."""
    fakeproc.add(300, ["/usr/bin/worker", "--id", "7"], rss_kib=4000)
    s = make(fakeproc, tmp_path)
    clock = Clock()
    clock.tick(s, new_segment=True)
    clock.tick(s)
    fakeproc._write("300/statm", "0 0 0 0 0 0 0\n")
    fakeproc._write("300/cmdline", b"")
    lines = clock.tick(s)
    assert of(lines, "P") == []
    assert [line.split()[2:4] for line in of(lines, "p")] == [["300", "0"]]


def test_the_wait_between_ticks_works_with_a_descriptor_past_1023(fakeproc, tmp_path):
    """A sampler started by a process that holds many descriptors (or inheriting them) gets
    its wake-up pipe past 1023, where select() refuses to work: it waits with poll()."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    try:
        while not held or held[-1] < 1030:  # every number below is taken: the pipe goes above
            held.append(os.open(os.devnull, os.O_RDONLY))
        fakeproc.add(100, ["/usr/bin/app"], rss_kib=20480)
        s = make(fakeproc, tmp_path, "--interval", "0.05", "--duration", "1")
        assert s.run() == 0
        ticks = [line for seg in (tmp_path / "log").glob("*.log")
                 for line in seg.read_text().splitlines() if line.startswith("s ")]
        assert len(ticks) >= 2  # a wait between two ticks, at least
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
