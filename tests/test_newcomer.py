"""What a new user trips on in the first ten minutes, each pinned by a test (issue 16)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import scenarios


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
