"""The sampler remembers the last few identities it encoded (Sampler.ident_memo): a forking
server's new workers, and the second look at every new process a tick later, cost reads and
no redaction. Nothing recorded may change: the same log, byte for byte, as without it."""

from __future__ import annotations

import json

import pytest
from test_sampler_skip import Kernel, _mask, make

from memtrail import sampler as S


@pytest.fixture
def closing():
    """Samplers to close the held statm descriptors of at the end (a fixture tree's
    hundreds of processes would otherwise stay open for the rest of the suite)."""
    samplers = []
    yield samplers.append
    for s in samplers:
        for st in s.procs.values():
            S.close_quietly(st.fd)


class NoMemo(dict):
    """A memo that never keeps anything: every identity encoded afresh, as before it."""

    def __setitem__(self, key, value) -> None:
        pass


def _server(kernel: Kernel, sampler, ticks: int = 40) -> bytes:
    """A pre-forking server: workers with one command line (and a secret in it) come and go,
    one worker execs, one rewrites its title, one moves to another cgroup, one's
    command line is too long to be remembered."""
    t = 1_700_000_000.0
    out = []
    worker = ["gunicorn: worker", "--password=hunter2"]
    kernel.add(100, ["gunicorn: master", "--password=hunter2"], rss_kib=50000)
    for pid in range(101, 121):
        kernel.add(pid, worker, ppid=100, start=2000 + pid)
    pid = 200
    for i in range(ticks):
        for _ in range(3):  # three workers replaced a tick
            gone = pid - 20
            if (kernel.root / str(gone)).exists() and gone > 120:
                kernel.remove(gone)
            kernel.add(pid, worker, ppid=100, start=3000 + pid)
            pid += 1
        if i == 5:  # the newest worker execs a tool, seen at the second look
            kernel.add(pid - 1, ["/usr/bin/convert", "in.png"], ppid=100, start=3000 + pid - 1)
        if i == 8:  # another rewrites its title (setproctitle)
            kernel.add(pid - 2, ["gunicorn: worker [busy]"], comm="gunicorn: worke",
                       ppid=100, start=3000 + pid - 2)
        if i == 11:
            kernel.add(pid - 1, worker, ppid=100, start=3000 + pid - 1,
                       cgroup="/system.slice/other.service")
        if i == 14:
            kernel.add(pid - 1, ["x" * 600, "--token", "s3cret"], ppid=100,
                       start=3000 + pid - 1)
        t += 1.0
        out.append(_mask(sampler.tick(t, t, 0.0, new_segment=i in (0, 25))))
    return b"".join(out)


def test_the_log_is_the_same_byte_for_byte_with_and_without_the_memo(tmp_path, monkeypatch,
                                                                     closing):
    encoded = []
    real = S.Sampler._ident_tail

    def counting(self, *args):
        encoded.append(self)
        return real(self, *args)
    monkeypatch.setattr(S.Sampler, "_ident_tail", counting)
    remembering = Kernel(tmp_path / "a", forks=True)
    forgetting = Kernel(tmp_path / "b", forks=True)
    a = make(remembering.root, tmp_path, "log-a")
    b = make(forgetting.root, tmp_path, "log-b")
    remembering.sampler, forgetting.sampler = a, b
    closing(a)
    closing(b)
    b.ident_memo = NoMemo()
    log_a = _server(remembering, a)
    log_b = _server(forgetting, b)
    assert log_a.replace(str(tmp_path / "a").encode(), b"ROOT") == \
        log_b.replace(str(tmp_path / "b").encode(), b"ROOT")
    idents = [line for line in log_a.split(b"\n") if line.startswith(b"P ")]
    assert len(idents) > 100
    assert b"hunter2" not in log_a and b"s3cret" not in log_a  # redacted on every hit too
    assert b'"cmd":["/usr/bin/convert","in.png"]' in log_a  # the exec, seen a tick later
    assert b"[busy]" in log_a and b"other.service" in log_a  # title and cgroup, likewise
    # the workers' one identity tail was encoded once and remembered
    assert len(a.ident_memo) < 10 and len(b.ident_memo) == 0
    # every identity read (the first look and the second) encoded without it; a handful with
    assert encoded.count(b) > 200 and encoded.count(a) < 10


def test_the_memo_is_small_and_keeps_no_long_command_line(tmp_path, closing):
    kernel = Kernel(tmp_path / "k", forks=True)
    s = make(kernel.root, tmp_path, "log")
    closing(s)
    kernel.sampler = s
    for pid in range(100, 100 + 3 * S.IDENT_MEMO):
        kernel.add(pid, ["job", str(pid)])
    kernel.add(500, ["long", "y" * S.IDENT_MEMO_CMDLINE])
    lines = s.tick(1_700_000_001.0, 1_700_000_001.0, 0.0, True).decode().splitlines()
    assert len(s.procs) == 3 * S.IDENT_MEMO + 1
    assert len(s.ident_memo) == S.IDENT_MEMO
    assert all(len(raw) <= S.IDENT_MEMO_CMDLINE for _comm, raw, _cg in s.ident_memo)
    # the oldest went first: the last ones taken in (in the listing's order) are kept
    admitted = [json.loads(line[line.index("{"):])["cmd"] for line in lines
                if line.startswith("P ")]
    jobs = [cmd[1] for cmd in admitted if cmd[0] == "job"]
    kept = {json.loads(tail)["cmd"][1] for tail, _v2 in s.ident_memo.values()}
    assert len(jobs) == 3 * S.IDENT_MEMO and kept == set(jobs[-S.IDENT_MEMO:])
