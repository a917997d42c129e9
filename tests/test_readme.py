"""README's commands, checked literally and run as written after the two set-up commands."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, log_text, wait_for

from memtrail.cli import COMMANDS

README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent  # the venv .ci/run made: set-up command 1 activates it


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 4)
    return README[start:end if end != -1 else None]


def _commands(text: str) -> list:
    """The commands of every ```sh block in `text`, without their trailing comments."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def test_setup_is_two_commands_and_the_first_puts_memtrail_on_path():
    setup = _commands(_section("Set up"))
    assert len(setup) == 2, setup
    assert ". .venv/bin/activate" in setup[0] and "pip install ." in setup[0]
    assert setup[1] == ".ci/run"


def test_every_memtrail_command_in_the_readme_exists():
    for cmd in _commands(README):
        for part in re.split(r"&&|\|", cmd):
            words = part.split()
            if words and words[0] == "memtrail":
                assert words[1] in COMMANDS, cmd


def _bash(cmd: str, cwd: Path, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", cmd], cwd=cwd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def _end(proc: subprocess.Popen) -> tuple:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return out, err


def _in_terminal(cmd: str, cwd: Path, env: dict) -> str:
    """Run a full-screen command in tmux for a moment; what it showed."""
    sock = f"memtrail-readme-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    opts = [a for k in ("PATH", "PYTHONPATH") if k in env for a in ("-e", f"{k}={env[k]}")]
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", "-c", str(cwd), *opts,
                    f"{cmd}; echo exited-$?; exec cat"], check=True, timeout=30, env=env)
    try:
        def shown():
            text = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                                  text=True, timeout=30).stdout
            return text if "LIVE" in text or "exited-" in text else None
        screen = wait_for(shown, 60, f"{cmd} on the screen", every=0.1)
        subprocess.run([*tmux, "send-keys", "q"], check=True, timeout=30)
        return screen
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)


def _span(logdir: Path) -> float:
    """Seconds between the first and the last tick written so far."""
    times = [float(line.split()[1]) for line in log_text(logdir).splitlines()
             if line.startswith("s ")]
    return times[-1] - times[0] if len(times) > 1 else 0.0


@pytest.mark.live
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="records the live /proc")
@pytest.mark.skipif(not (BIN / "memtrail").exists(), reason="needs the installed memtrail script")
def test_the_tour_and_the_incident_steps_run_as_written(tmp_path):
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT / "src"), NO_COLOR="1")
    tour = _commands(_section("A two-minute tour"))
    incident = _commands(_section("During an incident"))
    anywhere = [c for c in incident if "./logs" in c]
    assert tour[0].endswith("&") and "--pidfile ./logs.pid" in tour[0]
    assert any(c.startswith("memtrail view") for c in tour)
    assert len(anywhere) >= 5 and any(c.startswith("memtrail view") for c in anywhere)

    # No log yet: the raw `tail -f` of the newest segment fails at once instead of reading
    # the terminal (stdin stays open here, as a terminal would).
    raw = next(c for c in anywhere if c.startswith("tail -f"))
    proc = _bash(raw, tmp_path, env)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "tail" in err

    recorder = _bash(tour[0].rstrip("&").strip() + " --interval 0.2", tmp_path, env)
    try:
        wait_for(lambda: (tmp_path / "logs.pid").exists() and list(
            (tmp_path / "logs").glob("memtrail-*.log")), 60, "the first segment")
        # `top --at -10s` needs 10 s of recording (counted in time: a loaded host makes the
        # sampler tick faster, so a number of ticks is not a duration)
        wait_for(lambda: _span(tmp_path / "logs") >= 12, 60, "12 s of recording")
        for cmd in tour[1:] + anywhere:
            if cmd.startswith("memtrail view"):
                if shutil.which("tmux") is None:
                    continue
                screen = _in_terminal(cmd, tmp_path, env)
                assert "LIVE" in screen, screen
                continue
            proc = _bash(cmd, tmp_path, env)
            if " -f " in f" {cmd} ":  # a follower: runs until Ctrl-C
                line = proc.stdout.readline()
                out, err = _end(proc)
                assert line.strip(), (cmd, err)
            else:
                out, err = proc.communicate(timeout=120)
                allowed = (0, 1) if cmd.startswith("memtrail check") else (0,)
                assert proc.returncode in allowed, (cmd, proc.returncode, err)
            assert "command not found" not in err and "Traceback" not in err, (cmd, err)
        assert (tmp_path / "report.html").exists()
    finally:
        if recorder.poll() is None:
            os.killpg(recorder.pid, signal.SIGTERM)  # `kill %1`
        out, err = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, err
    assert "snapshot" in "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
