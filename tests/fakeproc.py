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
ZSPAGES = "nr_zspages {zspages}\n"  # 4.8 on


def smaps_vma(head: str, rss: int, pss: int, anon: int, swap: int, swap_pss: bool) -> str:
    """One mapping of /proc/PID/smaps as the kernel writes it (its first lines, then the
    sizes; SwapPss from 4.3)."""
    lines = [head, f"Size:               {rss * 2} kB", f"Rss:                {rss} kB",
             f"Pss:                {pss} kB", f"Shared_Clean:       {rss - pss} kB",
             "Shared_Dirty:          0 kB", "Private_Clean:         0 kB",
             f"Private_Dirty:      {pss} kB", f"Referenced:         {rss} kB",
             f"Anonymous:          {anon} kB", "AnonHugePages:         0 kB",
             f"Swap:               {swap} kB"]
    if swap_pss:
        lines.append(f"SwapPss:            {swap} kB")
    lines += ["KernelPageSize:        4 kB", "MMUPageSize:           4 kB",
              "Locked:                0 kB", "VmFlags: rd wr mr mw me ac"]
    return "\n".join(lines) + "\n"


class FakeProc:
    """A writable fake procfs. Sizes in KiB; the sampler multiplies pages by the page size.

    `kernel` shapes the files as that kernel version writes them: no Pss_Anon in
    smaps_rollup before 5.7, no PSI before 4.20, no smaps_rollup (only smaps) before 4.14, no
    RssAnon/RssFile/RssShmem in status before 4.5, no SwapPss before 4.3, no MemAvailable
    before 3.14."""

    def __init__(self, root: Path, kernel: tuple = (6, 6)) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.kernel = kernel
        self.page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        self.set_meminfo()
        self.set_vmstat()
        if kernel >= (4, 20):
            (self.root / "pressure").mkdir(exist_ok=True)
            self.set_psi(0, 0)
        (self.root / "sys/kernel/random").mkdir(parents=True, exist_ok=True)
        (self.root / "sys/kernel/random/boot_id").write_text("0f0f0f0f-test-boot\n")
        if kernel != (6, 6):  # the default tree keeps the host's release, as before
            (self.root / "sys/kernel/osrelease").write_text(
                f"{kernel[0]}.{kernel[1]}.0-fakeproc\n")
        (self.root / "self").mkdir(exist_ok=True)
        (self.root / "self/mountinfo").write_text("")

    def set_meminfo(self, total: int = 8 << 20, avail: int = 6 << 20, free: int = 5 << 20,
                    slab: int = 100000, percpu: int = 2048, vmalloc: int = 30000,
                    zswap: int = 0) -> None:
        text = MEMINFO.format(total=total, avail=avail, free=free, slab=slab)
        if self.kernel < (3, 14):
            text = "".join(line + "\n" for line in text.splitlines()
                           if not line.startswith("MemAvailable:"))
        if self.kernel >= (4, 14):
            text += f"Percpu:          {percpu} kB\n"
        # VmallocUsed: 0 from 4.4 until 5.3 counted it again
        text += f"VmallocUsed:     {vmalloc if not (4, 4) <= self.kernel < (5, 3) else 0} kB\n"
        if self.kernel >= (5, 19):
            text += f"Zswap:           {zswap} kB\n"
        self._write("meminfo", text)

    def set_vmstat(self, oom_kill: int = 0, zspages: int = 0, reclaimed: int = 0) -> None:
        """`reclaimed`: pages reclaimed (pgsteal_file, 5.8 on; before, pgsteal_kswapd)."""
        text = VMSTAT.format(oom_kill=oom_kill)
        if self.kernel >= (5, 8):
            text += f"pgsteal_anon 0\npgsteal_file {reclaimed}\n"
        else:
            text = text.replace("pgsteal_kswapd 0", f"pgsteal_kswapd {reclaimed}")
        self._write("vmstat", text + (
            ZSPAGES.format(zspages=zspages) if self.kernel >= (4, 8) else ""))

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
            cgroup: str = "/system.slice/test.service", status: dict = None,
            thread: bool = False, stack: int = 0) -> None:
        """A process (`thread`: a thread's own pid, which /proc answers but does not list;
        `stack`: its stack's start address, field 28, which the kernel shows as 0 to a reader
        that may not trace the process, and which exec moves)."""
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        comm = comm or (os.path.basename(argv[0])[:15] if argv else "kworker/0:1")
        flags = 0x00200040 if kthread else 0x00400100
        rest = ["S", str(ppid)] + ["0"] * 4 + [str(flags)] + ["0"] * 12 + [str(start)] + ["0"] * 30
        rest[35] = "-1" if thread else "17"  # exit_signal: -1 for a thread, else SIGCHLD
        rest[25] = str(stack)
        self._write(f"{pid}/stat", f"{pid} ({comm}) " + " ".join(rest) + "\n")
        raw = b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in argv)
        self._write(f"{pid}/cmdline", raw)
        self._write(f"{pid}/cgroup", f"0::{cgroup}\n")
        self.set_rss(pid, rss_kib, shared_kib)
        st = ({"RssAnon": rss_kib - shared_kib, "RssFile": shared_kib, "RssShmem": 0}
              if self.kernel >= (4, 5) else {"VmRSS": rss_kib})
        st.update({"VmSwap": 0, "VmLck": 0})
        st.update(status or {})
        self._write(f"{pid}/status", f"Name:\t{comm}\n" + "".join(
            f"{k}:\t{v} kB\n" for k, v in st.items()))
        self.set_pss(pid, rss_kib, rss_kib // 2)

    def set_pss(self, pid: int, rss_kib: int, pss_kib: int, swap_kib: int = 0) -> None:
        """smaps_rollup (or, before 4.14, smaps: three mappings holding the same totals),
        with the fields `kernel` writes."""
        if self.kernel < (4, 14):
            heap, stack = pss_kib // 2, pss_kib // 4
            parts = [("00400000-00600000 r-xp 00000000 08:01 1234 /usr/bin/python3.8",
                      rss_kib // 2, pss_kib - heap - stack, 0, 0),
                     ("01000000-09000000 rw-p 00000000 00:00 0 [heap]",
                      rss_kib // 4, heap, rss_kib // 4, swap_kib),
                     ("7ffd0000-7fff0000 rw-p 00000000 00:00 0 [stack]",
                      rss_kib - rss_kib // 2 - rss_kib // 4, stack, 0, 0)]
            self._write(f"{pid}/smaps", "".join(
                smaps_vma(head, r, p, a, w, self.kernel >= (4, 3)) for head, r, p, a, w in parts))
            return
        text = f"Rss: {rss_kib} kB\nPss: {pss_kib} kB\n"
        if self.kernel >= (5, 7):
            text += f"Pss_Anon: {pss_kib} kB\nPss_File: 0 kB\nPss_Shmem: 0 kB\n"
        text += f"Swap: {swap_kib} kB\nSwapPss: {swap_kib} kB\n"
        self._write(f"{pid}/smaps_rollup", text)

    def exec_same_binary(self, pid: int, argv, stack: int) -> None:
        """An exec of the binary the process already runs: a new command line and a new
        stack address; statm's code size (`text`) stays."""
        path = self.root / str(pid) / "stat"
        head, _sep, tail = path.read_text().rpartition(") ")
        rest = tail.split()
        rest[25] = str(stack)
        self._write(f"{pid}/stat", head + ") " + " ".join(rest) + "\n")
        self._write(f"{pid}/cmdline",
                    b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in argv))

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
