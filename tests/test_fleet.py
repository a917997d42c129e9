"""`memtrail fleet` over 1000 generated artifacts: the right table and roll-up, in bounded
memory (one recording analyzed at a time)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import ROOT
from scenarios import GiB, Host

from memtrail.fleet import percentile

ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
RUNS = 1000
KIB = 1024


def make_artifact(directory: str, i: int) -> dict:
    """A tiny CI job recording; returns what fleet must say about it."""
    h = Host(directory, host=f"ci-{i % 7}", mem_total=8 * GiB)
    h.spawn(100, ["java", "-jar", "/opt/build/gradle.jar"], 100 + i, comm="java")
    h.spawn(101, ["/bin/sh", "-c", "make"], 2, comm="sh")
    hog = i % 10 == 0
    linker = i % 25 == 0
    if hog:
        h.spawn(102, ["/usr/bin/python3", "/opt/jobs/hog.py"], 2500, comm="python3")
    if linker:
        h.spawn(103, ["/usr/bin/ld", "-o", "big"], 300, comm="ld")
    h.start_segment_tick()
    peak = h.used()
    low = h.mem_total - peak
    h.tick(2)
    if hog:
        h.oom_kill_proc(102)
    if linker:
        h.oom_kill_proc(103)
    h.tick(1)
    h.stop()
    return {"peak": peak * KIB, "low": low * KIB, "victims": (["hog.py"] if hog else [])
            + (["ld"] if linker else []),
            "top": "hog.py" if hog else "ld" if linker and 100 + i < 300 else "gradle.jar"}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("artifacts")
    expected = {}
    for i in range(RUNS):
        label = f"job-{i:04d}/memtrail-logs"
        expected[label] = make_artifact(str(root / label), i)
    return root, expected


def fleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memtrail", "fleet", *args], env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_fleet_table_and_rollup_over_1000_artifacts(artifacts):
    root, expected = artifacts
    res = fleet(str(root), "--json", "--top", "0")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    rows = doc["runs"]
    assert [r["run"] for r in rows] == sorted(expected)  # one per artifact, in path order
    for row in rows:
        want = expected[row["run"]]
        assert row["error"] is None
        assert row["peak_used_bytes"] == want["peak"]
        assert row["lowest_available_bytes"] == want["low"]
        assert row["total_bytes"] == 8 << 30
        assert sorted(row["oom_victims"]) == sorted(want["victims"])
        assert row["oom_kills"] == len(want["victims"])
        assert row["top_programs"][0]["name"] == want["top"]
        assert row["clean_end"] is True
    roll = doc["rollup"]
    assert roll["runs"] == RUNS and roll["unusable_runs"] == 0
    assert roll["runs_with_oom_kills"] == len([e for e in expected.values() if e["victims"]])
    victims = {v["name"]: (v["kills"], v["runs"]) for v in roll["oom_victims"]}
    assert victims == {"hog.py": (100, 100), "ld": (40, 40)}
    consumers = {c["name"]: c for c in roll["top_consumers"]}
    for name in ("gradle.jar", "hog.py", "ld"):
        assert consumers[name]["runs_top"] == sum(e["top"] == name for e in expected.values())
    assert consumers["hog.py"]["runs_top"] == 100
    assert consumers["gradle.jar"]["max_peak_rss_bytes"] == (100 + 999) << 20
    peaks = sorted(e["peak"] for e in expected.values())
    for p in (50, 90, 99):
        assert roll["peak_used"][f"p{p}_bytes"] == peaks[math.ceil(p / 100 * RUNS) - 1]
    assert roll["peak_used"]["max_bytes"] == peaks[-1]
    assert roll["lowest_available"]["min_bytes"] == min(e["low"] for e in expected.values())


def test_fleet_text_names_victims_and_top_consumers(artifacts):
    root, _ = artifacts
    res = fleet(*(str(root / f"job-{i:04d}") for i in (0, 1, 25)), "--sort", "peak")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("RUN")
    # by peak: job-0000 (hog + linker) first, job-0001 (a small java build) last
    assert "job-0000" in lines[1] and "hog.py" in lines[1] and "ld" in lines[1]
    assert "job-0001" in lines[3] and lines[3].split()[-3] == "gradle.jar"
    assert "3 run(s); 2 with OOM kills (3 kill(s))" in res.stdout
    assert "OOM victims across runs" in res.stdout
    victim_lines = res.stdout.split("OOM victims across runs")[1].split("\n\n")[0]
    assert "hog.py" in victim_lines and "ld" in victim_lines


def test_unusable_artifacts_are_rows_not_failures(tmp_path):
    make_artifact(str(tmp_path / "good"), 3)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "memtrail-20251120T220000Z-000.log").write_text("not a log\n")
    (tmp_path / "empty").mkdir()
    res = fleet(str(tmp_path / "good"), str(tmp_path / "broken"), str(tmp_path / "empty"),
                str(tmp_path / "missing"), "--json")
    assert res.returncode == 0
    doc = json.loads(res.stdout)
    assert [r["error"] is None for r in doc["runs"]] == [True, False]
    assert doc["rollup"]["unusable_runs"] == 1
    assert "empty: no memtrail segments" in res.stderr and "missing: no such file" in res.stderr
    res = fleet(str(tmp_path / "empty"))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7], 99) == 7
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([1, 2, 3], 50) == 2


# ru_maxrss counts the memory a process had before its exec, so a child of this (large) test
# process would start at the test's own RSS. A small isolated interpreter starts the fleet
# process instead and reports that child's peak from wait4.
_MEASURE = """
import os, sys
with open(os.devnull, "wb") as null:
    pid = os.posix_spawn(sys.argv[1], sys.argv[1:], dict(os.environ),
                         file_actions=[(os.POSIX_SPAWN_DUP2, null.fileno(), 1)])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _peak_rss_kib(args) -> int:
    out = subprocess.run([sys.executable, "-I", "-S", "-c", _MEASURE, sys.executable, "-m",
                          "memtrail", "fleet", *args], env=ENV, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out[0] == "0"
    return int(out[1])


def test_fleet_memory_stays_bounded(artifacts, tmp_path):
    """1000 recordings cost about what 50 do: reports are dropped, rows are small."""
    root, expected = artifacts
    few = sorted(expected)[:50]
    small = _peak_rss_kib([str(root / label) for label in few])
    large = _peak_rss_kib([str(root)])
    per_run = (large - small) * KIB / (RUNS - len(few))
    print(f"fleet peak RSS: 50 runs {small / 1024:.1f} MiB, {RUNS} runs {large / 1024:.1f} MiB "
          f"({per_run:.0f} bytes per extra run)")
    # A kept report of even these tiny runs is ~10 KiB; a kept row is well under 2 KiB.
    assert per_run < 4096, f"{per_run:.0f} bytes per extra run: reports are being kept"
