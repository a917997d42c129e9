"""What a new user trips on in the first ten minutes, each pinned by a test (issue 16)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import scenarios
from conftest import SAMPLER


def _big(directory: str) -> str:
    """A log whose every output is larger than a pipe's buffer (64 KiB)."""
    h = scenarios.Host(directory)
    for i in range(60):
        h.spawn(1000 + i, ["/usr/bin/python3", f"/srv/worker-{i}.py", "--queue", "q" * 30], 50)
    h.start_segment_tick()
    for step in range(120):
        for i in range(0, 60, 3):
            h.set_rss(1000 + i, 50 + (step % 7) * 5 + i)
        h.tick(1)
    h.stop()
    return directory


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    return _big(str(tmp_path_factory.mktemp("big")))


@pytest.mark.parametrize("args", [
    ["tail", "-n", "100000"],
    ["export", "--format", "csv"],
    ["export", "--format", "jsonl"],
    ["top", "--at", "+60s", "--limit", "0"],
    ["report"],
])
def test_a_reader_that_leaves_early_is_no_error(big_log, args):
    """`memtrail tail | head`: no "Broken pipe", no traceback, exit 0."""
    cmd = [sys.executable, "-m", "memtrail", args[0], big_log, *args[1:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.read(10)
    proc.stdout.close()  # like `head -c 10`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0, err
    assert first and err == ""


@pytest.mark.parametrize("args", [
    ["report"], ["check", "--max-used", "1T"], ["export", "--format", "csv"], ["diff"],
    ["report", "--help"],
])
def test_a_closed_stdout_is_one_line_not_a_traceback(big_log, args):
    """`memtrail report >&-`: Python starts with no sys.stdout; the command says so, as
    `ls >&-` does, and exits 2 (a check must not look passed)."""
    paths = [big_log, big_log] if args[0] == "diff" else [big_log]
    cmd = ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "memtrail", args[0],
           *paths, *args[1:]]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr == (f"memtrail {args[0]}: cannot write the output: standard output is "
                          "closed (redirect it, or give -o FILE where the command has it)\n")


def test_the_sampler_with_stdout_closed_answers_help_quietly():
    cmd = ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-I", "-S", str(SAMPLER),
           "--help"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr == ""


def test_recording_with_stdio_closed_ends_cleanly(tmp_path):
    """`memtrail record ... >&- 2>&-` (a CI step that discards everything, a cron line): the
    sampler records and the command ends with 0, in the foreground and as a daemon."""
    logdir, pidfile = tmp_path / "log", tmp_path / "rec.pid"
    memtrail = [sys.executable, "-m", "memtrail"]
    for args in (["record", "--dir", str(logdir), "--interval", "0.1", "--duration", "0.5"],
                 ["record", "--daemon", "--pidfile", str(pidfile), "--dir",
                  str(tmp_path / "daemon"), "--interval", "0.1"]):
        run = subprocess.run(["sh", "-c", 'exec "$@" >&- 2>&-', "sh", *memtrail, *args],
                             timeout=120)
        assert run.returncode == 0, args
    segments = sorted(logdir.glob("*.log"))
    assert segments and segments[-1].read_text().splitlines()[-1].startswith("Z ")
    stop = subprocess.run([*memtrail, "stop", "--pidfile", str(pidfile)],
                          capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0 and "stopped cleanly" in stop.stderr + stop.stdout


def test_record_help_names_the_daemon_mode():
    res = subprocess.run([sys.executable, "-m", "memtrail", "record", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--daemon" in res.stdout and "memtrail stop" in res.stdout


def test_without_flags_drops_each_form():
    from memtrail.daemon import without_flags

    args = ["--pidfile", "p", "--dir=d", "--interval", "0.2", "--pid", "q", "--dir", "e"]
    assert without_flags(args, ("--pidfile", "--dir")) == ["--interval", "0.2"]


@pytest.mark.live
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="starts the real sampler")
def test_the_daemons_command_line_names_pidfile_and_dir_once(tmp_path):
    pidfile, logdir = tmp_path / "m.pid", tmp_path / "log"
    mt = [sys.executable, "-m", "memtrail"]
    res = subprocess.run([*mt, "record", "--daemon", "--pidfile", str(pidfile), "--dir",
                          str(logdir), "--interval", "0.2"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    pid = int(pidfile.read_text())
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode() for a in fh.read().split(b"\0")]
        assert argv.count("--pidfile") == 1 and argv.count("--dir") == 1, argv
        assert argv[argv.index("--dir") + 1] == str(logdir)
    finally:
        stop = subprocess.run([*mt, "stop", "--pidfile", str(pidfile)], capture_output=True,
                              text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr


def test_export_of_a_program_nobody_ran_says_so(tmp_path, capsys):
    from memtrail import export

    d = scenarios.workers(str(tmp_path))
    rc = export.main([d, "--format", "csv", "--program", "nosuchprog", "-o",
                      str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert rc == 1 and "no process of program nosuchprog" in err and "nova-api" in err
    assert err.count("\n") == 1
    rc = export.main([d, "--format", "csv", "--program", "postgres", "-o",
                      str(tmp_path / "ok.csv")])
    assert rc == 0 and capsys.readouterr().err == ""


def test_rewritten_titles_lose_their_padding_and_a_newline_stays_in_its_row(tmp_path, capsys):
    from conftest import call_main

    from memtrail import top

    h = scenarios.Host(str(tmp_path))
    h.spawn(10, ["nginx: worker process"] + [""] * 20, 30, comm="nginx")
    h.spawn(11, ["postgres: checkpointer" + " " * 60], 20, comm="postgres")
    h.spawn(12, ["/usr/bin/evil", "two\nlines"], 10)
    h.start_segment_tick()
    h.tick(2)
    h.stop()
    rc, out, _ = call_main(capsys, top.main, str(tmp_path), "--at", "+1s")
    assert rc == 0
    lines = out.splitlines()
    assert any(line.endswith("  nginx: worker process") for line in lines), out
    assert any(line.endswith("  postgres: checkpointer") for line in lines), out
    assert any(line.endswith("/usr/bin/evil two\\nlines") for line in lines), out
    assert not any(line.startswith("lines") for line in lines)


def test_run_says_what_is_known_of_a_victim_that_lived_less_than_a_tick():
    from memtrail.run import oom_sentence, tree_sentence

    kill = {"pid": 42, "name": "python3", "program": "python3", "rss_bytes": 100 << 20,
            "anon_bytes": 99 << 20, "file_bytes": 1 << 20, "cmdline": None, "role": "command",
            "started_as": "sh -c 'exec python3 hog.py'"}
    text = oom_sentence(kill)
    assert "the command itself, started as sh -c 'exec python3 hog.py'" in text
    assert "python3 is the kernel's name" in text and "?" not in text
    del kill["started_as"]
    assert "its command line was never seen; python3 is the kernel's name" in oom_sentence(kill)
    tree = {"peak_rss_bytes": 100 << 20, "peak_time": "2026-12-01T22:49:13.222Z",
            "processes_at_peak": 0, "processes": 0, "largest": None}
    said = tree_sentence(tree)
    assert "never saw the command's processes" in said and "0 process" not in said
    nginx = dict(kill, cmdline=["nginx: worker process"] + [""] * 20)
    assert oom_sentence(nginx).endswith(": nginx: worker process")
