"""`memtrail view` in a real terminal: tmux drives it over a real recording with an OOM kill.

The recording is made by the real sampler, live while the console runs, from a fixture /proc
tree and a kernel-log file (the sampler's --kmsg FILE): a hog grows, the kernel's OOM report
lands in the kernel log, the hog is gone. tmux gives the console an 80x24 terminal; keys go in
with `send-keys`, the screen comes back with `capture-pane`, and every wait is on what the
screen says (never a fixed sleep).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLER, log_text, wait_for
from fakeproc import FakeProc

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (.ci/run installs it)"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler needs Linux"),
]
OOM = (ROOT / "tests" / "fixtures" / "kmsg" / "oom-6.1-memcg.txt").read_text()
HOSTILE = ["/usr/bin/evil", "\x1b[2J\x1b]0;pwned\x07", "two\nlines"]


class Tmux:
    """A private tmux server (its own socket), one 80x24 session running a command."""

    def __init__(self, name: str, command: str, env: dict) -> None:
        self.socket = f"memtrail-view-{os.getpid()}-{name}"
        opts = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        self.run("new-session", "-d", "-x", "80", "-y", "24", *opts, command)

    def run(self, *args: str) -> str:
        res = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                             text=True, timeout=30)
        if res.returncode != 0:
            raise AssertionError(f"tmux {args[0]}: {res.stderr.strip()}")
        return res.stdout

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []))

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def wait(self, predicate, what: str, timeout: float = 60.0) -> str:
        seen = []

        def check():
            text = self.screen()
            seen[:] = [text]
            return text if predicate(text) else None
        try:
            return wait_for(check, timeout, what, every=0.1)
        except AssertionError:
            raise AssertionError(f"{what}; the screen was:\n{seen[0] if seen else ''}") \
                from None

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)


def _header_time(screen: str) -> str:
    m = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?Z", screen.splitlines()[0])
    assert m, screen
    return m.group(0)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A live recording by the real sampler: a hog grows and the kernel kills it."""
    tmp = tmp_path_factory.mktemp("view")
    fp = FakeProc(tmp / "proc")
    for i in range(4):
        fp.add(200 + i, ["/usr/bin/python3", "/usr/bin/nova-api", f"--worker={i}"],
               rss_kib=120000, start=500 + i)
    fp.add(300, HOSTILE, rss_kib=30000, start=700)
    fp.add(5151, ["python3", "hog.py", "--size", "1G"], rss_kib=50000, start=900)
    kmsg = tmp / "kmsg"
    kmsg.write_text("")
    log = tmp / "log"
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(log), "--proc-root",
         str(fp.root), "--kmsg", str(kmsg), "--interval", "0.2", "--keyframe", "2",
         "--quiet", "--no-mlock", "--no-oom-adj", "--journal", "no", "--no-cgroups"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def logged(needle: str) -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"sampler exited: {proc.stderr.read()!r}")
        try:
            return needle in log_text(log)
        except (OSError, EOFError):
            return False
    try:
        wait_for(lambda: log_text(log).count("\ns ") >= 5 if log.exists() else False, 60,
                 "5 ticks")
        for step in range(1, 6):  # the hog grows: 200, 350, ... MiB
            rss = 50000 + step * 150000
            fp.set_rss(5151, rss)
            fp.set_meminfo(avail=(6 << 20) - step * (900 << 10))
            pages = rss // fp.page_kib
            wait_for(lambda p=pages: logged(f" 5151 {p * fp.page_kib} "), 60,
                     f"the hog at {rss} KiB")
        kmsg.write_text(OOM)  # the kernel kills it (pid 5151 in the fixture)
        fp.set_vmstat(oom_kill=1)
        fp.remove(5151)
        fp.set_meminfo()
        wait_for(lambda: logged(" oom_kill {"), 60, "the OOM kill in the log")
        wait_for(lambda: log_text(log).split(" oom_kill {", 1)[1].count("\ns ") >= 10, 60,
                 "ticks after the kill")
        yield {"log": log, "fp": fp, "sampler": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stderr.close()


def _start(recording, name: str, extra_env: dict = None) -> Tmux:
    env = {"TERM": "xterm-256color", "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT / "src")}
    env.pop("NO_COLOR", None)
    env.update(extra_env or {})
    cmd = (f"{sys.executable} -m memtrail view {recording['log']}; "
           f"echo view-exited-$?; exec cat")
    return Tmux(name, cmd, env)


def test_view_live_time_travel_filter_resize(recording):
    t = _start(recording, "main")
    try:
        live = t.wait(lambda s: "LIVE" in s.splitlines()[0] and "nova-api" in s
                      and "OOM kills so far: 1" in s and "events" in s, "the live screen")
        lines = live.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        first = _header_time(live)
        # Live: the time moves with the sampler.
        t.wait(lambda s: _header_time(s) != first, "the live time to move")

        # The previous OOM kill: its table, the victim marked.
        t.keys("O")
        kill = t.wait(lambda s: re.search(r"5151 hog\.py .* KILLED python3 hog\.py", s)
                      and "HISTORY" in s and ">" in s, "the victim after O, the event pointed at")
        at_kill = _header_time(kill)

        # The step keys move the time: a tick back, a tick forward, a minute back.
        t.keys("Left")
        # (a screen is captured while curses may still be drawing it: wait for all of it)
        t.wait(lambda s: _header_time(s) < at_kill and "KILLED" not in s and "hog.py" in s,
               "the tick before the kill after Left, the hog alive in it")
        t.keys("Right")
        t.wait(lambda s: _header_time(s) == at_kill and "KILLED" in s, "back at the kill")
        t.keys("[")
        t.wait(lambda s: _header_time(s) < at_kill, "a minute back (the start)")
        t.keys("o")
        t.wait(lambda s: "KILLED" in s and _header_time(s) == at_kill, "the kill again, by o")

        # The filter filters.
        t.keys("/", "nova", "Enter")
        filtered = t.wait(lambda s: "filter 'nova' (4 of" in s and "hog.py" not in s,
                          "the filter applied")
        table = [line for line in filtered.splitlines() if re.match(r"^ +\d+ ", line)]
        assert len(table) == 4 and all("nova-api" in line for line in table), filtered
        t.keys("/", "BSpace", "BSpace", "BSpace", "BSpace", "Enter")
        t.wait(lambda s: "filter '" not in s and "hog.py" in s, "the filter cleared")

        # Grouped by program.
        t.keys("t")
        t.wait(lambda s: "programs by" in s and "x4" in s, "nova-api x4")
        t.keys("t")

        # Resizing does not crash, and the screen fits the new size.
        t.run("resize-window", "-x", "60", "-y", "15")
        small = t.wait(lambda s: "memtrail" in s and len(s.splitlines()) <= 15
                       and "KILLED" in s, "the screen after a resize to 60x15")
        assert all(len(line) <= 60 for line in small.splitlines())
        t.run("resize-window", "-x", "100", "-y", "30")
        t.wait(lambda s: "COMMAND" in s and any(len(line) > 80 for line in s.splitlines()),
               "the screen after a resize to 100x30")
        t.run("resize-window", "-x", "80", "-y", "24")

        # Back to live with one key.
        t.keys("L")
        t.wait(lambda s: "LIVE" in s.splitlines()[0], "live again after L")

        # Go to a time.
        t.keys("g", "+0s", "Enter")
        t.wait(lambda s: "HISTORY 1/" in s, "the first tick after g +0s")

        # Hostile command lines cannot act on the terminal: shown escaped, on one line.
        t.keys("L", "/", "evil", "Enter")
        evil = t.wait(lambda s: "/usr/bin/evil \\x1b[2J\\x1b]0" in s
                      and "filter 'evil' (1 of" in s, "the hostile command line, escaped")
        assert "nova-api" not in evil and not any(line.startswith("lines")
                                                  for line in evil.splitlines())
        assert "pwned" not in t.run("display-message", "-p", "#{pane_title}")

        t.keys("q")
        t.wait(lambda s: "view-exited-0" in s, "q to quit with status 0")
    finally:
        t.close()


def test_view_no_color_and_colour(recording):
    plain = _start(recording, "nocolor", {"NO_COLOR": "1"})
    coloured = _start(recording, "color")
    try:
        for t in (plain, coloured):
            t.wait(lambda s: "LIVE" in s.splitlines()[0], "the live screen")
            t.keys("O")
            t.wait(lambda s: "KILLED" in s, "the victim")
        sgr = re.compile(r"\x1b\[([0-9;]*)m")

        def colours(text: str) -> set:
            codes = set()
            for m in sgr.finditer(text):
                parts = m.group(1).split(";")
                codes |= {p for p in parts if p.isdigit() and (30 <= int(p) <= 37
                                                              or p in ("38", "48"))}
            return codes
        assert colours(plain.screen(escapes=True)) == set()
        assert colours(coloured.screen(escapes=True))  # the victim in red
        for t in (plain, coloured):
            t.keys("q")
            t.wait(lambda s: "view-exited-0" in s, "quit")
    finally:
        plain.close()
        coloured.close()


def test_view_needs_a_terminal_and_a_log(tmp_path):
    res = subprocess.run([sys.executable, "-m", "memtrail", "view", str(tmp_path)],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "terminal" in res.stderr
    missing = Tmux("missing", f"{sys.executable} -m memtrail view {tmp_path / 'nope'}; "
                              f"echo view-exited-$?; exec cat",
                   {"PYTHONPATH": str(ROOT / "src")})
    try:
        screen = missing.wait(lambda s: "view-exited-" in s, "the exit")
        assert "view-exited-2" in screen and "no such file" in screen
        assert "Traceback" not in screen
    finally:
        missing.close()


def test_default_log_is_the_units_then_memtrail_logs(monkeypatch, tmp_path):
    from memtrail import view

    monkeypatch.setattr(view, "UNIT_DIR", str(tmp_path / "absent"))
    assert view.default_log() == "memtrail-logs"
    monkeypatch.setattr(view, "UNIT_DIR", str(tmp_path))
    assert view.default_log() == str(tmp_path)
    assert Path(view.default_log()).is_dir()
