"""Build small fake /proc trees for the sampler (it takes --proc-root), one file per fact.

Fixture trees are written by code rather than kept as static files so each test states the
situation it needs (a process that grows, one that exits, a kernel thread) next to its asserts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MEMINFO = """MemTotal:       {total} kB
MemFree:        {free} kB
MemAvailable:   {avail} kB
Buffers:           10240 kB
Cached:           512000 kB
SwapCached:            0 kB
Shmem:             20480 kB
Slab:             {slab} kB
SReclaimable:      60000 kB
SUnreclaim:        40000 kB
KernelStack:        4000 kB
PageTables:         8000 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Committed_AS:    2000000 kB
Unevictable:           0 kB
Mlocked:               0 kB
AnonPages:       1000000 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
"""

VMSTAT = """nr_free_pages 100
pgmajfault 5
pgscan_kswapd 0
pgscan_direct 0
pgsteal_kswapd 0
pgsteal_direct 0
pswpin 0
pswpout 0
allocstall_normal 1
allocstall_movable 2
oom_kill {oom_kill}
"""


class FakeProc:
    """A writable fake procfs. Sizes in KiB; the sampler multiplies pages by the page size."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        self.set_meminfo()
        self.set_vmstat()
        (self.root / "pressure").mkdir(exist_ok=True)
        self.set_psi(0, 0)
        (self.root / "sys/kernel/random").mkdir(parents=True, exist_ok=True)
        (self.root / "sys/kernel/random/boot_id").write_text("0f0f0f0f-test-boot\n")
        (self.root / "self").mkdir(exist_ok=True)
        (self.root / "self/mountinfo").write_text("")

    def set_meminfo(self, total: int = 8 << 20, avail: int = 6 << 20, free: int = 5 << 20,
                    slab: int = 100000) -> None:
        self._write("meminfo", MEMINFO.format(total=total, avail=avail, free=free, slab=slab))

    def set_vmstat(self, oom_kill: int = 0) -> None:
        self._write("vmstat", VMSTAT.format(oom_kill=oom_kill))

    def set_psi(self, some_us: int, full_us: int) -> None:
        self._write("pressure/memory",
                    f"some avg10=0.00 avg60=0.00 avg300=0.00 total={some_us}\n"
                    f"full avg10=0.00 avg60=0.00 avg300=0.00 total={full_us}\n")

    def _write(self, rel: str, text) -> None:
        """Rewrite in place (same inode), as the kernel does: open descriptors see it."""
        path = self.root / rel
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        with open(path, "r+b" if path.exists() else "wb") as fh:
            fh.write(data)
            fh.truncate()

    def add(self, pid: int, argv, rss_kib: int = 10240, shared_kib: int = 2048,
            comm: str = "", ppid: int = 1, start: int = 1000, kthread: bool = False,
            cgroup: str = "/system.slice/test.service", status: dict = None) -> None:
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        comm = comm or (os.path.basename(argv[0])[:15] if argv else "kworker/0:1")
        flags = 0x00200040 if kthread else 0x00400100
        rest = ["S", str(ppid)] + ["0"] * 4 + [str(flags)] + ["0"] * 12 + [str(start)] + ["0"] * 30
        self._write(f"{pid}/stat", f"{pid} ({comm}) " + " ".join(rest) + "\n")
        raw = b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in argv)
        self._write(f"{pid}/cmdline", raw)
        self._write(f"{pid}/cgroup", f"0::{cgroup}\n")
        self.set_rss(pid, rss_kib, shared_kib)
        st = {"RssAnon": rss_kib - shared_kib, "RssFile": shared_kib, "RssShmem": 0,
              "VmSwap": 0, "VmLck": 0}
        st.update(status or {})
        self._write(f"{pid}/status", f"Name:\t{comm}\n" + "".join(
            f"{k}:\t{v} kB\n" for k, v in st.items()))
        self._write(f"{pid}/smaps_rollup", f"Rss: {rss_kib} kB\nPss: {rss_kib // 2} kB\n"
                    f"Pss_Anon: {rss_kib // 2} kB\nPss_File: 0 kB\nPss_Shmem: 0 kB\n"
                    f"Swap: 0 kB\nSwapPss: 0 kB\n")

    def set_rss(self, pid: int, rss_kib: int, shared_kib: int = 2048) -> None:
        pk = self.page_kib
        self._write(f"{pid}/statm",
                    f"{rss_kib * 2 // pk} {rss_kib // pk} {shared_kib // pk} 1 0 10 0\n")

    def remove(self, pid: int) -> None:
        shutil.rmtree(self.root / str(pid))

    def write_slabinfo(self, caches: dict) -> None:
        lines = ["slabinfo - version: 2.1", "# name <active_objs> ..."]
        for name, kib in caches.items():
            pages = kib // self.page_kib
            lines.append(f"{name} 100 100 64 64 1 : tunables 0 0 0 : slabdata {pages} {pages} 0")
        self._write("slabinfo", "\n".join(lines) + "\n")
