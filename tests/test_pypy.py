"""The analyzer under PyPy (Debian's `pypy3`): what it writes is CPython's, byte for byte, and
it starts itself again once with a small nursery so its memory stays within 100 MiB.

A week of log reads 2-3x quicker under PyPy (bench/RESULTS.md); that is only worth offering if
the account it gives is the same one. The interpreters are both real: `.ci/run` installs
pypy3 on Debian and Ubuntu, so these tests run in CI; elsewhere they skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import scenarios
from test_hostile import ENV, hostile_log

from memtrail import cli

PYPY = shutil.which("pypy3")
needs_pypy = pytest.mark.skipif(PYPY is None, reason="pypy3 is not installed")
SRC = str(Path(__file__).resolve().parent.parent / "src")


def test_the_restart_is_for_pypy_analyzer_commands_only():
    env = {"PYTHONPATH": "/elsewhere"}
    path = ["/usr/lib/pypy3.9", SRC]

    def restart(args, env=env, impl="pypy", path=path):
        return cli.pypy_restart(args, env, impl, "/usr/bin/pypy3", path)
    argv, new_env = restart(["report", "x"])
    assert argv == ["/usr/bin/pypy3", "-m", "memtrail", "report", "x"]
    assert {k: new_env[k] for k in cli.PYPY_GC} == cli.PYPY_GC
    assert new_env["PYTHONPATH"] == "/elsewhere"  # memtrail is found as it was: unchanged
    # Found some other way: its directory is added, after what was there (a site-packages
    # directory first on the path would shadow the standard library)
    _argv, new_env = restart(["report"], path=["/usr/lib/pypy3.9"])
    assert new_env["PYTHONPATH"] == os.pathsep.join(["/elsewhere", SRC])
    assert restart(["report"], impl="cpython") is None
    assert restart(["record", "--dir", "x"]) is None
    assert restart(["report"], env={"PYPY_GC_NURSERY": "8MB"}) is None
    assert restart(["report"], env={"PYPY_GC_MAX": "1GB"}) is None
    assert restart([]) is None


def test_the_collector_is_tuned_for_analyzer_commands_under_cpython_only():
    assert cli.analyzer_gc(["report", "x"], "cpython") == cli.ANALYZER_GC
    assert cli.analyzer_gc(["export", "x", "--format", "jsonl"], "cpython") == cli.ANALYZER_GC
    assert cli.analyzer_gc(["record", "--dir", "x"], "cpython") is None  # the sampler's own
    assert cli.analyzer_gc(["report"], "pypy") is None
    assert cli.analyzer_gc([], "cpython") is None


def test_a_real_command_runs_with_the_tuned_collector(tmp_path):
    """Seen from inside a real `memtrail` process: its thresholds when it reads a log."""
    probe = ("import gc, sys; from memtrail import cli, report\n"
             "report.main = lambda argv: print(gc.get_threshold()) or 0\n"
             "sys.argv = ['memtrail', 'report', 'x']; sys.exit(cli.main())")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={**ENV, "PYTHONPATH": SRC}, timeout=60)
    assert res.stdout.strip() == str(cli.ANALYZER_GC), res.stderr


def _environ_of(pid: int) -> dict:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        items = fh.read().split(b"\0")
    return dict(i.decode("utf-8", "replace").partition("=")[::2] for i in items if i)


@needs_pypy
@pytest.mark.parametrize("own", [None, "8MB"])
def test_a_live_pypy_process_runs_with_the_nursery(tmp_path, own):
    """`tail -f` stays up: once it has printed, the process that printed is the restarted
    one (same pid: an exec, not a child), with memtrail's collector settings or the
    operator's own."""
    log = scenarios.workers(str(tmp_path / "log"))
    env = {**ENV, "PYTHONPATH": SRC}
    for key in list(env):
        if key.startswith("PYPY_GC_"):
            del env[key]
    if own:
        env["PYPY_GC_NURSERY"] = own
    proc = subprocess.Popen([PYPY, "-m", "memtrail", "tail", "-f", log], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline()
        assert first, proc.stderr.read().decode("utf-8", "replace")
        seen = _environ_of(proc.pid)
        if own:  # the operator's tuning, untouched
            assert seen["PYPY_GC_NURSERY"] == own and "PYPY_GC_MAJOR_COLLECT" not in seen
        else:
            assert {k: seen[k] for k in cli.PYPY_GC} == cli.PYPY_GC
        assert os.readlink(f"/proc/{proc.pid}/exe") == os.path.realpath(PYPY)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _outputs(python: str, log: str, tmp: Path, extra_env: Optional[dict] = None) -> dict:
    """Every analyzer view of `log` under one interpreter: stdout, files, exit codes."""
    env = {**ENV, "PYTHONPATH": SRC, **(extra_env or {})}
    html = tmp / f"{Path(python).name}.html"
    commands = {
        "report": ["report", log], "json": ["report", "--json", log],
        "markdown": ["report", "--markdown", log], "top": ["top", log, "--at", "+10s"],
        "check": ["check", log, "--no-oom", "--max-used", "1G", "--max-program", "x=1M"],
        "csv": ["export", log, "--format", "csv"], "jsonl": ["export", log, "--format", "jsonl"],
        "openmetrics": ["export", log, "--format", "openmetrics"],
        "html": ["html", log, "-o", str(html)], "fleet": ["fleet", log],
    }
    out = {}
    for name, args in commands.items():
        res = subprocess.run([python, "-m", "memtrail", *args], capture_output=True, env=env,
                             timeout=300)
        assert b"Traceback" not in res.stderr, res.stderr.decode("utf-8", "replace")
        out[name] = (res.returncode, res.stdout, res.stderr)
    out["html file"] = html.read_bytes()
    return out


@needs_pypy
@pytest.mark.parametrize("make", [scenarios.oom, scenarios.leak, hostile_log])
def test_pypy_writes_what_cpython_writes(tmp_path, make):
    log = make(str(tmp_path / "log"))
    want = _outputs(sys.executable, log, tmp_path)
    got = _outputs(PYPY, log, tmp_path)
    assert all(want[name][0] == 0 and want[name][1] for name in want
               if name not in ("check", "html", "html file")), want
    assert want["check"][0] == 1 and want["html file"].startswith(b"<!DOCTYPE html>")
    for name in want:
        assert got[name] == want[name], name


@needs_pypy
def test_the_sampler_records_the_same_lines_under_pypy(fakeproc, tmp_path):
    """The single file run with whatever python3 a box has: under PyPy (no os.writev, no
    _json, a _ctypes without dlsym) it still records, the same lines as CPython, and says
    in its residency event that memory could not be locked."""
    fakeproc.add(100, ["/usr/bin/python3", "app.py", "--token", "s3cret"], rss_kib=40960)
    fakeproc.add(101, ["caf\udce9", "x"], comm="weird) name")
    sampler = Path(SRC) / "memtrail" / "sampler.py"
    lines = {}
    for name, python in (("cpython", sys.executable), ("pypy", PYPY)):
        logdir = tmp_path / name
        run = subprocess.run(
            [python, str(sampler), "--dir", str(logdir), "--proc-root", str(fakeproc.root),
             "--kmsg", "", "--no-cgroups", "--no-oom-adj", "--quiet", "--journal", "no",
             "--interval", "0.2", "--duration", "0.5"],
            capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and run.stderr == "", run.stderr
        text = "".join(p.read_text() for p in sorted(logdir.glob("*.log")))
        assert text.splitlines()[-1].startswith("Z ")
        first = [line.split(" ", 2) for line in text.splitlines() if line[:2] in ("P ", "p ")]
        lines[name] = sorted((kind, rest) for kind, _ts, rest in first)
        if name == "pypy":
            assert '"mlock":"unavailable' in text
    assert lines["pypy"] == lines["cpython"] and lines["cpython"]
    assert any('"--token","***"' in rest for _k, rest in lines["cpython"])
