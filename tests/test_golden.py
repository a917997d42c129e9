"""Every released log format stays readable: the golden v1 recording, read by today's analyzer.

tests/fixtures/golden/v1 was written once by the real sampler (tests/make_golden.py) and is
never regenerated for format 1. If a change to the reader or the analyzer breaks one of these
assertions, it broke logs that operators already have.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from memtrail import reader

GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "v1"


def memtrail(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memtrail", *args], capture_output=True,
                          text=True, timeout=120)


def test_every_line_of_the_golden_log_reads():
    stats = reader.ReadStats()
    recs = list(reader.read(str(GOLDEN), stats))
    assert stats.problems == 0 and stats.unknown == 0
    assert {r.type for r in recs} == set("HsKPpXdDCcGbEZ")
    kinds = {r.fields[0] for r in recs if r.type == "E"}
    assert {"start", "oom_kill", "oom_counter", "cgroup_oom", "low", "snapshot",
            "rotate", "residency"} <= kinds
    assert sum(r.type == "H" for r in recs) == len(reader.segments(str(GOLDEN)))


def test_the_golden_story_is_told_the_same():
    run = memtrail("report", "--json", str(GOLDEN))
    assert run.returncode == 0, run.stderr
    rep = json.loads(run.stdout)
    assert rep["span"]["ticks"] == 76 and rep["span"]["gaps"] == []
    (kill,) = rep["oom_kills"]
    assert kill["pid"] == 5151
    assert kill["cmdline"] == ["python3", "hog.py", "--size", "1G", "--api-token=***"]
    assert kill["rss_bytes"] == (198476 + 5120) * 1024
    assert rep["programs"][0]["name"] == "nova-api" and rep["programs"][0]["count"] == 6
    assert rep["unexplained"]["top_slabs"][0]["name"] == "dentry"


def test_every_command_accepts_the_golden_log(tmp_path):
    for args in (["top", str(GOLDEN), "--at", "+5s"], ["check", str(GOLDEN), "--no-oom"],
                 ["diff", str(GOLDEN), str(GOLDEN)], ["tail", "-n", "5", str(GOLDEN)],
                 ["html", str(GOLDEN), "-o", str(tmp_path / "r.html")],
                 ["export", str(GOLDEN), "--format", "jsonl", "-o", str(tmp_path / "r.jsonl")],
                 ["fleet", str(GOLDEN)]):
        run = memtrail(*args)
        expected = 1 if args[0] == "check" else 0  # the golden run has an OOM kill
        assert run.returncode == expected, (args, run.stderr)
        assert "Traceback" not in run.stderr
