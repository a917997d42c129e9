"""`memtrail report` tells back the story each scripted scenario acted out."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys

import pytest
import scenarios
from conftest import SAMPLER

from memtrail import report
from memtrail.programs import program_name
from memtrail.units import fmt_bytes, parse_size, parse_size_or_pct

MiB = 1 << 20
GiB = 1 << 30


def _json(capsys, *args) -> dict:
    rc = report.main(["--json", *args])
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)


def test_required_json_keys(tmp_path, capsys):
    rep = _json(capsys, scenarios.oom(str(tmp_path)))
    assert rep["schema"] == report.SCHEMA
    assert set(rep["span"]) >= {"start", "end", "ticks", "gaps"}
    assert set(rep["peak"]) >= {"time", "used_bytes", "available_bytes"}
    assert set(rep["unexplained"]) >= {"bytes", "slab_bytes", "top_slabs"}
    for key in ("oom_kills", "programs", "growers"):
        assert isinstance(rep[key], list)
    kill = rep["oom_kills"][0]
    assert set(kill) >= {"time", "pid", "name", "cmdline", "rss_bytes", "top"}
    assert set(kill["top"][0]) >= {"pid", "name", "rss_bytes"}
    assert set(rep["programs"][0]) >= {"name", "count", "rss_bytes"}


def test_worker_group_folded(tmp_path, capsys):
    rep = _json(capsys, scenarios.workers(str(tmp_path)))
    first = rep["programs"][0]
    assert first["name"] == "nova-api"
    assert first["count"] == scenarios.NOVA_WORKERS + 1  # the workers and their parent
    assert first["rss_bytes"] == (scenarios.NOVA_WORKERS * scenarios.NOVA_WORKER_MIB + 90) * MiB
    assert first["largest"]["rss_bytes"] == scenarios.NOVA_WORKER_MIB * MiB
    assert rep["programs"][1]["name"] == "postgres" and rep["programs"][1]["count"] == 2
    names = [p["name"] for p in rep["programs"]]
    assert [n for n in names if n.startswith("[")] == []  # no kernel threads
    units = {u["path"]: u["peak_bytes"] for u in rep["units"]}
    assert units["/system.slice/postgresql.service"] == 240 * MiB
    assert rep["span"]["ticks"] == 31 and rep["span"]["gaps"] == []
    assert rep["span"]["clean_end"] is True


def test_worker_group_text_and_ungroup(tmp_path, capsys):
    path = scenarios.workers(str(tmp_path))
    assert report.main([path]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith("nova-api"))
    assert f"x{scenarios.NOVA_WORKERS + 1}" in line and "3.1 GiB" in line
    assert report.main(["--ungroup", "--top", "0", path]) == 0
    text = capsys.readouterr().out
    assert text.count("nova-api[") == scenarios.NOVA_WORKERS + 1


def test_oom_kill_with_victim_command_and_table_before(tmp_path, capsys):
    rep = _json(capsys, scenarios.oom(str(tmp_path)))
    assert len(rep["oom_kills"]) == 1
    kill = rep["oom_kills"][0]
    assert kill["pid"] == 501 and kill["name"] == "python3"
    assert kill["cmdline"] == scenarios.OOM_VICTIM_CMD
    assert kill["program"] == "hog.py"
    assert kill["rss_bytes"] > 4 * GiB
    top = kill["top"]
    assert top[0]["pid"] == 501  # the victim was the largest just before
    assert top[1]["name"] == "service.jar"
    assert rep["psi"]["full_us"] > 0
    # the peak is before the kill, and the victim leads the programs at the peak
    assert rep["peak"]["time"] < kill["time"]
    assert rep["programs"][0]["name"] == "hog.py"


def test_oom_in_markdown(tmp_path, capsys):
    assert report.main(["--markdown", scenarios.oom(str(tmp_path))]) == 0
    md = capsys.readouterr().out
    assert "**1 OOM kill(s)**" in md
    assert "/opt/jobs/hog.py --size 20G" in md
    assert "| program | count |" in md


def test_steady_leak_found_spike_ignored(tmp_path, capsys):
    rep = _json(capsys, scenarios.leak(str(tmp_path)))
    growers = rep["growers"]
    assert [g["pid"] for g in growers] == [600]  # not the sidekiq spike
    rate = growers[0]["rate_bytes_per_hour"]
    assert abs(rate - scenarios.LEAK_MIB_PER_HOUR * MiB) < 0.1 * scenarios.LEAK_MIB_PER_HOUR * MiB
    assert growers[0]["name"] == "server.js"


def test_slab_dominated_host(tmp_path, capsys):
    rep = _json(capsys, scenarios.slab(str(tmp_path)))
    un = rep["unexplained"]
    assert un["top_slabs"][0]["name"] == scenarios.SLAB_CACHE
    assert un["top_slabs"][0]["bytes"] == scenarios.SLAB_MIB * MiB
    assert un["slab_bytes"] >= scenarios.SLAB_MIB * MiB
    assert un["bytes"] > un["process_private_bytes"]
    assert "2.5 GiB in slab cache nfs_inode_cache, more than any process" in un["sentence"]


def test_gap_and_torn_tail_are_reported(tmp_path, capsys):
    path = scenarios.gap(str(tmp_path))
    rep = _json(capsys, path)
    gaps = rep["span"]["gaps"]
    assert len(gaps) == 1 and gaps[0]["seconds"] >= scenarios.GAP_S
    assert rep["reading"]["torn_lines"] == 1
    assert rep["span"]["clean_end"] is False
    assert report.main([path]) == 0
    text = capsys.readouterr().out
    assert "NOT RECORDING for 10m" in text and "torn line" in text


def test_rotated_gz_segments_one_run(tmp_path, capsys):
    d = scenarios.rotated(str(tmp_path))
    rep = _json(capsys, d)
    assert len(rep["segments"]) == 3 and rep["span"]["gaps"] == []
    # the same three files given one by one are still one recording
    files = sorted(os.path.join(d, f) for f in os.listdir(d))
    rep2 = _json(capsys, *files)
    assert "runs" not in rep2 and rep2["span"]["ticks"] == rep["span"]["ticks"]


def test_several_directories_are_several_runs(tmp_path, capsys):
    a = scenarios.workers(str(tmp_path / "a"))
    b = scenarios.oom(str(tmp_path / "b"))
    doc = _json(capsys, a, b)
    assert [len(r["oom_kills"]) for r in doc["runs"]] == [0, 1]
    assert report.main([a, b]) == 0
    assert capsys.readouterr().out.count("memtrail report:") == 2


def test_foreign_file_is_a_counted_skip(tmp_path, capsys):
    rep = _json(capsys, scenarios.foreign(str(tmp_path)))
    assert len(rep["reading"]["skipped_files"]) == 1
    assert "not a memtrail log" in rep["reading"]["skipped_files"][0]
    assert rep["programs"][0]["name"] == "nova-api"


def test_truncated_gz_segment(tmp_path, capsys):
    d = scenarios.rotated(str(tmp_path))
    gz = sorted(f for f in os.listdir(d) if f.endswith(".gz"))[0]
    with open(os.path.join(d, gz), "rb") as fh:
        data = fh.read()
    with open(os.path.join(d, gz), "wb") as fh:
        fh.write(data[: len(data) // 2])
    rep = _json(capsys, d)
    assert rep["reading"]["truncated_files"]
    assert rep["span"]["ticks"] > 0


@pytest.mark.parametrize("content", [b"", b"hello\nworld\n", b"\x00\x01\x02garbage"])
def test_unusable_input_one_line_exit_2(tmp_path, capsys, content):
    f = tmp_path / "memtrail-20260101T000000Z-000.log"
    f.write_bytes(content)
    assert report.main([str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(f) in err and "Traceback" not in err


def test_missing_path_exit_2(tmp_path, capsys):
    assert report.main([str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_subprocess_plain_file_and_gz(tmp_path):
    d = scenarios.workers(str(tmp_path / "w"))
    seg = os.path.join(d, os.listdir(d)[0])
    with open(seg, "rb") as src, gzip.open(str(tmp_path / "x.log.gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    proc = subprocess.run([sys.executable, "-m", "memtrail", "report", "--json",
                           str(tmp_path / "x.log.gz")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["programs"][0]["name"] == "nova-api"


PROGRAM_NAMES = [
    (["/usr/bin/python3", "/usr/bin/nova-api"], "nova-api"),
    (["nova-api: worker(3)"], "nova-api"),
    (["postgres: checkpointer"], "postgres"),
    (["python3", "-m", "http.server"], "http.server"),
    (["/usr/bin/python3.11", "-u", "-X", "dev", "/srv/x.py"], "x.py"),
    (["java", "-Xmx2g", "-jar", "/opt/kafka.jar"], "kafka.jar"),
    (["java", "-cp", "a:b", "org.elasticsearch.bootstrap.Elasticsearch"], "Elasticsearch"),
    (["perl", "-w", "/usr/sbin/spamd"], "spamd"),
    (["ruby", "-I", "lib", "bin/sidekiq"], "sidekiq"),
    (["node", "--max-old-space-size", "4096", "server.js"], "server.js"),
    (["bash", "-c", "sleep 1"], "bash"),
    (["/bin/sh", "/etc/init.d/x.sh"], "x.sh"),
    (["bash", "/dev/fd/3"], "bash"),
    (["-bash"], "bash"),
    (["nginx: worker process", "", ""], "nginx"),
    (["/usr/sbin/sshd", "-D"], "sshd"),
    ([], "kworker"),
]


@pytest.mark.parametrize("cmd,name", PROGRAM_NAMES)
def test_program_names(cmd, name):
    assert program_name(cmd, "kworker") == name


def test_sizes():
    assert fmt_bytes(int(3.1 * GiB)) == "3.1 GiB"
    assert fmt_bytes(512 * MiB) == "512 MiB"
    assert fmt_bytes(0) == "0 B"
    assert parse_size("200M") == 200 * MiB and parse_size("1.5GiB") == int(1.5 * GiB)
    assert parse_size("2g") == 2 * GiB and parse_size("4096") == 4096
    assert parse_size_or_pct("10%") == (None, 10.0)
    with pytest.raises(ValueError):
        parse_size("lots")


@pytest.mark.live
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="records the live /proc")
def test_end_to_end_real_sampler_names_a_real_process(tmp_path):
    """Record real processes with the real sampler, then `report --json` must name them."""
    name = f"memtrail_e2e_hog_{os.getpid()}.py"  # other test runs on this host record theirs
    hog = tmp_path / name
    hog.write_text("import sys\n"
                   "block = bytearray(50 << 20)\n"
                   "for i in range(0, len(block), 4096):\n"
                   "    block[i] = 1\n"
                   "print('ready', flush=True)\n"
                   "sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, str(hog), "--e2e-marker", "blue-giraffe"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        logs = tmp_path / "logs"
        rec = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logs),
                              "--interval", "0.2", "--duration", "3"],
                             capture_output=True, text=True, timeout=60)
        assert rec.returncode == 0, rec.stderr
    finally:
        child.stdin.close()
        child.wait(timeout=10)
        child.stdout.close()
    proc = subprocess.run([sys.executable, "-m", "memtrail", "report", "--json", "--top", "0",
                           str(logs)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["span"]["ticks"] >= 5 and rep["span"]["clean_end"] is True
    group = next(p for p in rep["programs"] if p["name"] == name)
    assert group["count"] == 1
    assert group["rss_bytes"] >= 50 * MiB
    assert group["largest"]["pid"] == child.pid
    assert group["largest"]["cmdline"][-2:] == ["--e2e-marker", "blue-giraffe"]
    assert rep["peak"]["used_bytes"] > 50 * MiB


def test_mixed_versions_newer_segment_skipped_and_said(tmp_path, capsys):
    d = scenarios.workers(str(tmp_path))
    newer = os.path.join(d, "memtrail-20991231T000000Z-000.log")
    with open(newer, "w") as fh:
        fh.write('H 4102358400.000 memtrail 2 {"format":2}\ns 4102358400.000 1 2 3\n')
    rep = _json(capsys, d)
    assert any("format version 2" in s for s in rep["reading"]["skipped_files"])
    assert rep["programs"][0]["name"] == "nova-api"
    assert report.main([d]) == 0
    assert "upgrade memtrail" in capsys.readouterr().out


def test_corrupted_logs_never_crash(tmp_path):
    """Flip bytes, cut lines, duplicate and drop them: counted skips, never a traceback."""
    import random

    src = scenarios.oom(str(tmp_path / "src"))
    seg = os.path.join(src, os.listdir(src)[0])
    with open(seg, "rb") as fh:
        lines = fh.read().split(b"\n")
    alphabet = b"0123456789 -{}\":,abcXZpPKsE\xff"
    for seed in range(60):
        rnd = random.Random(seed)
        mutated = list(lines)
        for _ in range(rnd.randrange(1, 12)):
            i = rnd.randrange(1, len(mutated))  # keep the header most of the time
            line = bytearray(mutated[i])
            op = rnd.randrange(4)
            if op == 0 and line:
                line[rnd.randrange(len(line))] = rnd.choice(alphabet)
            elif op == 1:
                line = line[: rnd.randrange(len(line) + 1)]
            elif op == 2:
                mutated.insert(i, mutated[rnd.randrange(len(mutated))])
            else:
                mutated.pop(i)
                continue
            mutated[i] = bytes(line)
        d = tmp_path / f"m{seed}"
        d.mkdir()
        (d / "memtrail-20251120T220000Z-000.log").write_bytes(b"\n".join(mutated))
        reports, errors = report.load([str(d)])
        for rep in reports:
            report.render_text(rep)
            report.render_markdown(rep)
            json.dumps(rep)
        assert reports or errors


def test_detail_pss_swap_and_locked_memory(tmp_path, capsys):
    h = scenarios.Host(str(tmp_path))
    h.spawn(10, ["/usr/sbin/keepalived"], 300)
    h.set_detail(10, anon_mib=280, file_mib=20, swap_mib=12, locked_mib=256)
    h.set_pss(10, 290)
    h.spawn(11, ["/usr/sbin/sshd", "-D"], 8)
    h.start_segment_tick()
    h.tick(3)
    h.stop()
    rep = _json(capsys, str(tmp_path))
    top = rep["programs"][0]
    assert top["name"] == "keepalived"
    assert top["pss_bytes"] == 290 * MiB and top["swap_bytes"] == 12 * MiB
    assert rep["programs"][1]["pss_bytes"] is None  # not recorded is not zero
    locked = rep["locked"]["processes"]
    assert [(p["pid"], p["locked_bytes"]) for p in locked] == [(10, 256 * MiB)]
    assert rep["locked"]["peak_mlocked_bytes"] == 256 * MiB


def test_a_program_peak_is_a_state_of_the_machine(tmp_path, capsys):
    """Two workers trade 100 MiB within one tick: the program's total never moved, so its
    peak is not the sum between the two `p` lines of that tick (a total no tick ever had)."""
    host = scenarios.Host(str(tmp_path))
    for pid in (100, 101):
        host.spawn(pid, ["/usr/bin/php-fpm", "pool www"], 200)
    host.tick(3)
    host.set_rss(100, 300)
    host.set_rss(101, 100)
    host.tick(3)
    host.stop()
    rep = _json(capsys, str(tmp_path))
    [peak] = rep["program_peaks"]
    assert peak["peak_rss_bytes"] == 400 * MiB and peak["max_count"] == 2


@pytest.mark.parametrize("make", [scenarios.oom, scenarios.leak, scenarios.workers])
def test_a_caller_that_needs_less_gets_the_same_figures(tmp_path, make):
    """check and jsonl ask the analysis for less (no growth; jsonl no per-program peaks;
    check without --max-program no program bookkeeping at all): the parts they skip are
    empty, everything else is the full report's, figure for figure."""
    path = make(str(tmp_path))
    full = report.analyze([path])
    assert full["growers"] or full["oom_kills"] or full["program_peaks"]
    no_growth = report.analyze([path], growth=False)
    skipped = {"growers": [], "group_growers": []}
    assert no_growth == {**full, **skipped}
    no_peaks = report.analyze([path], growth=False, peaks=False)
    skipped.update(program_peaks=[])
    assert no_peaks == {**full, **skipped}
    assert report.analyze([path], peaks=False) == no_peaks  # growth needs the peaks' totals
    bare = report.analyze([path], growth=False, programs=False)
    skipped.update(programs=[], programs_total=0, programs_time=None, unexplained=None)
    assert bare == {**full, **skipped}


def _exec_log(directory: str) -> str:
    """Entrypoint shells that exec their servers: one right after it started, one after
    waiting a minute; then the host's peak."""
    host = scenarios.Host(directory)
    host.spawn(100, ["/usr/sbin/sshd", "-D"], 10)
    host.spawn(200, ["/bin/sh", "/entrypoint.sh"], 2)
    host.spawn(300, ["/bin/sh", "/wait-for-db.sh"], 2)
    host.tick(2)
    host.exec_(200, ["/usr/bin/java", "-jar", "app.jar"], 900)
    host.tick(60)
    host.exec_(300, ["/usr/lib/postgresql/16/bin/postgres", "-D", "/data"], 800)
    host.tick(5)
    host.set_rss(300, 1200)
    host.tick(5)
    host.stop()
    return directory


def test_a_process_that_execs_is_counted_under_its_new_program(tmp_path, capsys):
    rep = _json(capsys, _exec_log(str(tmp_path)))
    programs = {p["name"]: p for p in rep["programs"]}
    assert programs["app.jar"]["rss_bytes"] == 900 * MiB  # `java -jar app.jar`
    assert programs["postgres"]["rss_bytes"] == 1200 * MiB
    assert "entrypoint.sh" not in programs and "wait-for-db.sh" not in programs
    peaks = {p["name"]: p for p in rep["program_peaks"]}
    assert peaks["postgres"]["peak_rss_bytes"] == 1200 * MiB and peaks["postgres"]["count"] == 1
    assert peaks["app.jar"]["peak_rss_bytes"] == 900 * MiB
    assert peaks["wait-for-db.sh"]["peak_rss_bytes"] == 2 * MiB  # what the shell itself held
    rc = report.main([str(tmp_path)])
    text = capsys.readouterr().out
    assert rc == 0 and "postgres" in text and "wait-for-db" not in text.split("Top programs")[1]


def test_exports_name_the_new_program_after_an_exec(tmp_path, capsys):
    from memtrail import export

    _exec_log(str(tmp_path))
    assert export.main([str(tmp_path), "--format", "csv"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    header = rows[0]
    pid_i, prog_i = header.index("pid"), header.index("program")
    names = [r[prog_i] for r in rows[1:] if r[pid_i] == "300" and r[prog_i]]
    assert names[0] == "wait-for-db.sh" and names[-1] == "postgres"
    assert export.main([str(tmp_path), "--format", "jsonl"]) == 0
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    progs = [o.get("program") for o in objs if o.get("pid") == 300 and o.get("program")]
    assert progs[0] == "wait-for-db.sh" and progs[-1] == "postgres"


def test_a_log_renaming_processes_twice_in_a_tick_counts_each_once(tmp_path, capsys):
    """Hostile: one tick renames 2000 processes, each twice. Each is counted once, under
    its last name, and the repeats leave the totals alone."""
    host = scenarios.Host(str(tmp_path))
    n = 2000
    for pid in range(1000, 1000 + n):
        host.spawn(pid, ["/bin/sh"], 0.25, shared_mib=0.1)  # 500 MiB in all
    host.tick(1)
    for name in ("a", "b"):
        for pid in range(1000, 1000 + n):
            proc = host.procs[pid]
            proc.cmd, proc.comm = [f"/bin/{name}"], name
            host.pending.append(f"P {{t}} {pid} {proc.start} 1 0 "
                                + scenarios._j({"comm": name, "cmd": proc.cmd}))
    host.tick(2)
    host.stop()
    rep = _json(capsys, str(tmp_path))
    peaks = {p["name"]: p for p in rep["program_peaks"]}
    assert peaks["b"]["count"] == n and peaks["b"]["peak_rss_bytes"] == n * MiB // 4
    assert {p["name"] for p in rep["programs"]} == {"b"}
