"""The oldest interpreters memtrail claims, for real: the sampler on Python 3.8 (a box whose
newest Python is its distribution's old one), the analyzer on 3.9. vermin checks the syntax
and the library calls; only running them shows the program works there.

They run where such interpreters are installed (pyenv's versions, or python3.8/python3.9 on
PATH); elsewhere they skip, since Debian and Ubuntu ship neither any more."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import scenarios
from conftest import SAMPLER, log_text, records

from memtrail import reader

SRC = str(Path(__file__).resolve().parent.parent / "src")


def interpreter(version: str) -> Optional[str]:
    """A real python binary of that version (never pyenv's forking shim)."""
    found = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python"
                                                f"{version}")))
    for path in [*found, shutil.which(f"python{version}")]:
        if path and ".pyenv/shims" not in path and os.access(path, os.X_OK):
            return path
    return None


PY38, PY39 = interpreter("3.8"), interpreter("3.9")


@pytest.mark.skipif(PY38 is None, reason="no Python 3.8 here")
def test_the_sampler_records_on_python_3_8(tmp_path):
    logdir = tmp_path / "log"
    run = subprocess.run([PY38, "-I", "-S", str(SAMPLER), "--dir", str(logdir), "--quiet",
                          "--interval", "0.2", "--duration", "1", "--status-every", "0.2",
                          "--pss-every", "0.2"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    text = log_text(logdir)
    head = text.splitlines()[0]
    assert f'"python":"{run_version(PY38)}' in head
    assert text.splitlines()[-1].startswith("Z ") and "\nD " in text and "\nd " in text
    stats = reader.ReadStats()
    recs = records(logdir, stats)
    assert stats.problems == 0 and sum(r.type == "s" for r in recs) >= 3


def run_version(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(PY39 is None, reason="no Python 3.9 here")
@pytest.mark.parametrize("args", [["report", "--json"], ["report"], ["html", "-o", "-"],
                                  ["export", "--format", "jsonl"]])
def test_the_analyzer_on_python_3_9_says_what_it_says_here(tmp_path, args):
    d = scenarios.oom(str(tmp_path / "o"))
    env = dict(os.environ, PYTHONPATH=SRC, NO_COLOR="1", TZ="UTC")
    old, new = (subprocess.run([py, "-m", "memtrail", *args, d], capture_output=True,
                               env=env, timeout=120)
                for py in (PY39, sys.executable))
    assert old.returncode == new.returncode == 0, old.stderr
    assert old.stdout == new.stdout and old.stdout
