"""Write tests/fixtures/golden/v1: a format-v1 recording made by the real sampler.

The golden log is the compatibility contract in executable form: once committed it is never
regenerated for the same format version, and every later analyzer must read it with zero
problems and reach the same conclusions (tests/test_golden.py). It is recorded from a fixture
/proc tree, cgroup tree and kernel log, so it carries no details of the machine that made it.

Run from the repository root: python tests/make_golden.py (only for a new format version).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fakeproc import FakeProc  # noqa: E402

OOM = (HERE / "fixtures" / "kmsg" / "oom-6.1-memcg.txt").read_text()


def main() -> None:
    out = HERE / "fixtures" / "golden" / "v1"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp = FakeProc(tmp / "proc")
        fp.write_slabinfo({"dentry": 300000, "kmalloc-64": 9000})
        for i in range(6):
            fp.add(200 + i, ["/usr/bin/python3", "/usr/bin/nova-api", f"--worker={i}"],
                   rss_kib=120000, start=500 + i, cgroup="/system.slice/nova-api.service")
        fp.add(5151, ["python3", "hog.py", "--size", "1G", "--api-token=s3cret"],
               rss_kib=50000, start=900, cgroup="/hog")
        cg = tmp / "cgroup"
        for rel, cur in (("system.slice", 800 << 20), ("system.slice/nova-api.service",
                                                        720 << 20), ("hog", 200 << 20)):
            d = cg / rel
            d.mkdir(parents=True)
            (d / "memory.current").write_text(f"{cur}\n")
            (d / "memory.events").write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
        (cg / "cgroup.controllers").write_text("memory\n")
        kmsg = tmp / "kmsg"
        kmsg.write_text("")
        log = tmp / "log"
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(HERE.parent / "src/memtrail/sampler.py"), "--dir",
             str(log), "--proc-root", str(fp.root), "--cgroup-root", str(cg), "--kmsg",
             str(kmsg), "--interval", "0.2", "--keyframe", "1", "--quiet", "--no-mlock",
             "--no-oom-adj", "--journal", "no", "--rotate-size", "6K"])
        time.sleep(1.0)  # a few ticks; the golden log is made once, by hand
        for step in range(8):  # the hog grows
            fp.set_rss(5151, 50000 + step * 40000)
            fp.set_meminfo(avail=(6 << 20) - step * (600 << 10))
            time.sleep(0.25)
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(0.3)
        kmsg.write_text(OOM)  # the kernel kills it
        fp.set_vmstat(oom_kill=1)
        (cg / "hog" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
        fp.remove(5151)
        fp.set_meminfo()
        time.sleep(0.6)
        for name in ("memory.current", "memory.events"):
            (cg / "hog" / name).unlink()
        (cg / "hog").rmdir()
        time.sleep(11)  # the cgroup tree is rescanned every 10 s: its removal is recorded
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        for seg in sorted(log.iterdir()):
            (out / seg.name).write_bytes(seg.read_bytes())
    print("wrote", sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
