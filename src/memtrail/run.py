"""`memtrail run -- COMMAND` (record while a command runs, report, gate) and `memtrail stop`.

Made for CI jobs: one line wraps a job step, and the step's log, summary and exit status say
whether it ran out of memory and why. The sampler runs as its own process (see daemon.py), the
command runs in the foreground exactly as it would without memtrail, and the report covers only
the segments this run wrote, even when the log directory is shared with earlier runs.

Signals: the command runs in its own process group. When memtrail runs in the foreground of a
terminal, that group is given the terminal, so Ctrl-C, Ctrl-\\ and Ctrl-Z reach the command
once, directly, as they would without memtrail (Ctrl-Z suspends the whole job; `fg` resumes
it). SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to memtrail itself (a CI runner cancelling the
job) are passed on to the command's process group, once. The sampler sits in a session of its
own and is stopped only after the command has ended, so the log covers the command's end.

Exit status (docs/ci.md):
- the command failed (non-zero exit, or killed by signal N: 128+N, as shells report it): that
  status, whatever the gate says (the verdict is still printed);
- the command succeeded and a gate limit was broken: 1 (as `memtrail check`);
- the command succeeded, gate options were given and the log cannot tell (no samples): 2;
- otherwise the command's status, 0;
- before the command starts: 2 for a bad option or a sampler that cannot record (the command
  is not run), 127 when the command is not found, 126 when it cannot be executed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from typing import Dict, List, Optional, Set, Tuple

from memtrail import daemon, output
from memtrail.check import Parser, add_gate_arguments, evaluate, verdict
from memtrail.model import Proc, Run, Tick, pss_current, replay
from memtrail.programs import program_name, title_args
from memtrail.reader import ReadStats
from memtrail.report import (
    Analysis,
    oom_held,
    private_part,
    render_markdown,
    unit_makeup_text,
    usable,
)
from memtrail.safetext import markdown, markdown_code, terminal
from memtrail.sampler import redact
from memtrail.timeparse import iso
from memtrail.units import fmt_bytes, fmt_duration

SCHEMA = "memtrail.run/1"
# Own memory below this share of RSS, and this much below it, is worth a word: forked
# processes share most of their RSS (a single small process's PSS is below its RSS by its
# shared libraries alone).
SHARED_WORTH_SAYING = 0.9
SHARED_WORTH_SAYING_BYTES = 16 << 20
BESIDE_SHOWN = 3  # the command's own processes named beside an OOM victim
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _run_parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="memtrail run",
        usage="memtrail run [options] -- COMMAND [ARG...]",
        description="Record memory while COMMAND runs, then print a short report and apply the "
                    "gate. Exit status: the command's own (128+N when killed by signal N); 1 "
                    "when the command succeeded but a gate limit broke; 2 when memtrail cannot "
                    "record or (with a gate) the log cannot tell. Other sampler settings: "
                    "MEMTRAIL_* environment variables (see memtrail record --help).")
    ap.add_argument("--dir", metavar="DIR",
                    help="log directory (default: $MEMTRAIL_DIR, $LOGS_DIRECTORY, else "
                         "./memtrail-logs); may hold earlier runs: the report covers this one")
    ap.add_argument("--interval", type=_positive, metavar="S",
                    help="seconds between ticks (default 1; fractions allowed)")
    add_gate_arguments(ap.add_argument_group("gate (as in memtrail check)"))
    out = ap.add_argument_group("outputs")
    out.add_argument("--summary", metavar="FILE",
                     help="write the markdown summary to FILE (it is also appended to "
                          "$GITHUB_STEP_SUMMARY when that is set)")
    out.add_argument("--json", metavar="FILE", help="write the run and its report as JSON")
    out.add_argument("--html", metavar="FILE",
                     help="write the HTML report (needs `memtrail html`)")
    out.add_argument("--full", action="store_true",
                     help="print the full report (`memtrail report`) instead of the short one")
    out.add_argument("--quiet", "-q", action="store_true",
                     help="print only problems: OOM kills, a broken gate, sampler trouble")
    ap.add_argument("--start-timeout", type=_positive, default=30.0, metavar="S",
                    help="how long the sampler may take to start recording (default 30)")
    ap.add_argument("--stop-timeout", type=_positive, default=30.0, metavar="S",
                    help="how long it may take to stop after SIGTERM before SIGKILL "
                         "(default 30)")
    ap.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                    help="the command and its arguments, after `--`")
    return ap


def _say(text: str) -> None:
    print(f"memtrail: {terminal(text)}", file=sys.stderr, flush=True)


# -- the command -------------------------------------------------------------------------------
def _proc_start(pid: int) -> Optional[int]:
    """Field 22 of /proc/PID/stat: with the pid, the identity the log uses for a process."""
    try:
        return int(daemon.stat_fields(pid)[19])
    except (ValueError, IndexError):
        return None


class Foreground:
    """Run one command as a shell runs a foreground job: its own process group holding the
    terminal (when memtrail has it), signals sent to memtrail passed on, Ctrl-Z handled."""

    def __init__(self, argv: List[str]) -> None:
        self.argv = argv
        self.pid = 0
        self.start_ticks: Optional[int] = None
        self.started = 0.0
        self.ended = 0.0
        self.tty: Optional[int] = None
        self.signal: Optional[int] = None  # the signal that killed it
        self.gave_tty = False
        self.pending: List[int] = []
        self.received: List[int] = []
        self.saved: Dict[int, object] = {}

    # signals sent to memtrail: pass them on to the command's group, once
    def _forward(self, signum: int, _frame) -> None:
        self.received.append(signum)
        if not self.pid:
            self.pending.append(signum)
            return
        try:
            os.killpg(self.pid, signum)
        except OSError:
            pass

    def install(self) -> None:
        for sig in FORWARDED:
            old = signal.getsignal(sig)
            if old == signal.SIG_IGN:  # nohup and friends: the command inherits the ignore
                continue
            self.saved[sig] = old
            signal.signal(sig, self._forward)

    def restore(self) -> None:
        for sig, old in self.saved.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self.saved = {}

    def _open_tty(self) -> None:
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if os.tcgetpgrp(fd) == os.getpgrp():  # we are the foreground job
                self.tty = fd
                return
        except OSError:
            pass
        os.close(fd)

    def _set_foreground(self, pgrp: int) -> None:
        if self.tty is None:
            return
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
        try:
            os.tcsetpgrp(self.tty, pgrp)
        except OSError:
            pass
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def spawn(self) -> Optional[int]:
        """Start the command; None on success, else 127 (not found) or 126 (not executable)."""
        self._open_tty()
        self.started = time.time()
        try:
            self.pid = os.posix_spawnp(
                self.argv[0], self.argv, os.environ, setpgroup=0,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))  # as subprocess restores them
        except OSError as exc:
            if self.tty is not None:
                os.close(self.tty)
                self.tty = None
            if isinstance(exc, FileNotFoundError):
                _say(f"{self.argv[0]}: command not found")
                return 127
            _say(f"{self.argv[0]}: cannot execute: {exc.strerror}")
            return 126
        self.start_ticks = _proc_start(self.pid)
        if self.tty is not None:
            self._set_foreground(self.pid)
            self.gave_tty = True
        for signum in self.pending:
            self._forward(signum, None)
        self.pending = []
        return None

    def wait(self) -> int:
        """Wait for the command; its exit status as a shell reports it (128+N for signal N)."""
        while True:
            try:
                _, status = os.waitpid(self.pid, os.WUNTRACED)
            except ChildProcessError:
                status = 0
                break
            if os.WIFSTOPPED(status):
                self._stopped(os.WSTOPSIG(status))
                continue
            break
        self.ended = time.time()
        if self.gave_tty:
            self._set_foreground(os.getpgrp())
        if self.tty is not None:
            os.close(self.tty)
            self.tty = None
        if os.WIFSIGNALED(status):
            self.signal = os.WTERMSIG(status)
            return 128 + self.signal
        return os.WEXITSTATUS(status)

    def _stopped(self, sig: int) -> None:
        if self.tty is None:
            return  # stopped by someone else, no terminal: they will continue it
        if sig in (signal.SIGTTIN, signal.SIGTTOU):
            # It touched the terminal before we handed it over: it has it now, go on.
            os.killpg(self.pid, signal.SIGCONT)
            return
        # Ctrl-Z: take the terminal back and stop ourselves, so the shell sees a stopped job.
        self._set_foreground(os.getpgrp())
        os.killpg(os.getpgrp(), signal.SIGSTOP)
        # `fg` or `bg` continued us: the command goes on, with the terminal if we have it.
        try:
            if os.tcgetpgrp(self.tty) == os.getpgrp():
                self._set_foreground(self.pid)
        except OSError:
            pass
        os.killpg(self.pid, signal.SIGCONT)


# -- the command's processes in the log ------------------------------------------------------
class CommandTree:
    """The command and its descendants through the replay: their summed RSS and its peak.

    A process belongs to the command when it is the command itself (same pid and start time)
    or its parent belongs. Membership is decided when a process first appears in the log, in
    any order within a tick.
    """

    def __init__(self, pid: int, start_ticks: Optional[int]) -> None:
        self.root = pid
        self.root_start = start_ticks
        self.members: Set[Proc] = set()
        self.pids: Set[int] = set()  # live members
        self.ever: Set[int] = set()  # every pid that ever belonged
        self.seen: Set[Proc] = set()  # classified (member or not)
        self.known: Set[int] = set()  # every pid the log ever showed
        self.everyone: List[Proc] = []  # every member ever (their cgroups at the end)
        self.others: Set[str] = set()  # the memory cgroup of every other process, when seen
        self.total = 0
        self.peak = 0
        self.peak_time: Optional[float] = None
        self.peak_count = 0
        self.peak_private = 0  # the members' own memory at the peak (report.private_part)
        self.peak_from_pss = 0  # how many of them that figure had a PSS read for
        self.largest: Optional[Tuple[int, int, str, List[str]]] = None  # rss, pid, name, cmd

    def _is_root(self, proc: Proc) -> bool:
        return proc.pid == self.root and (self.root_start is None
                                          or proc.start in (self.root_start, -1))

    def add(self, tick: Tick) -> None:
        fresh = [p for p, old in tick.changes if p not in self.seen]
        changed = True
        while changed and fresh:
            changed = False
            rest = []
            for proc in fresh:
                if self._is_root(proc) or proc.ppid in self.pids:
                    self.members.add(proc)
                    self.everyone.append(proc)
                    self.pids.add(proc.pid)
                    self.ever.add(proc.pid)
                    self.seen.add(proc)
                    changed = True
                else:
                    rest.append(proc)
            fresh = rest
        self.seen.update(fresh)
        self.others.update(p.memcg or p.cgroup for p in fresh)
        self.known.update(p.pid for p, _ in tick.changes)
        for proc, old in tick.changes:
            if proc in self.members:
                self.total += proc.rss - old
                if self.largest is None or proc.rss > self.largest[0]:
                    self.largest = (proc.rss, proc.pid, program_name(proc.cmd, proc.comm),
                                    proc.cmd)
        for proc in tick.exited:
            self.seen.discard(proc)
            if proc in self.members:
                self.members.discard(proc)
                self.pids.discard(proc.pid)
                self.total -= proc.rss
        if self.total > self.peak:
            self.peak, self.peak_time, self.peak_count = self.total, tick.time, len(self.members)
            # Summed only at a new peak: RSS counts a page a forked worker shares with its
            # parent once per process, so a prefork server's RSS sum can be several times what
            # it holds; PSS (read by the sampler's tier) says what it holds.
            own, read = 0, 0
            for p in self.members:
                pss_anon, pss = (p.pss_anon, p.pss) if pss_current(p) else (None, None)
                own += private_part(p.rss, p.shared, pss_anon, pss)
                read += pss is not None
            self.peak_private, self.peak_from_pss = own, read

    def own_cgroup(self) -> Optional[str]:
        """The memory cgroup that held the command's processes and nothing else, if there was
        one (`systemd-run --scope`, a container, a CI step in a cgroup of its own): its peak
        is the kernel's own count of their memory, each page once."""
        # The members' last cgroups: a command that moves itself into a cgroup of its own
        # (`echo $$ > cgroup.procs; exec ...`) is seen again at its exec.
        paths = {p.memcg or p.cgroup for p in self.everyone}
        if len(paths) != 1:
            return None
        path = paths.pop()
        if path in ("", "/"):
            return None
        below = path.rstrip("/") + "/"
        if any(o == path or o.startswith(below) for o in self.others):
            return None
        return path

    def result(self) -> dict:
        lg = self.largest
        return {
            "peak_rss_bytes": self.peak, "peak_time": iso(self.peak_time),
            "processes_at_peak": self.peak_count, "processes": len(self.ever),
            "peak_private_bytes": self.peak_private if self.peak_count else None,
            "peak_private_from_pss": self.peak_from_pss,
            "cgroup": self.own_cgroup(), "cgroup_peak_bytes": None, "cgroup_makeup": None,
            "largest": None if lg is None else {"rss_bytes": lg[0], "pid": lg[1],
                                                "name": lg[2], "cmdline": lg[3]},
        }


def analyze_run(segments: List[str], label: str, fg: Foreground) -> Tuple[dict, dict, list]:
    """One pass over this run's segments: the report dict, the command tree's figures, and
    the OOM kills of the command's processes (see `oom_of_command`)."""
    stats, run = ReadStats(), Run()
    analysis = Analysis(top=5)
    tree = CommandTree(fg.pid, fg.start_ticks)
    for tick in replay(segments, stats, run):
        analysis.add(tick, run)
        tree.add(tick)
    rep = analysis.result(run, stats, label)
    return rep, tree.result(), oom_of_command(rep, tree, fg.started, fg.ended)


def oom_of_command(rep: dict, tree: CommandTree, started: float, ended: float) -> List[dict]:
    """OOM kills whose victim was the command (`role` "command") or one of its processes
    ("descendant"). A victim the sampler never saw (it lived less than one tick, so its
    parent is unknown) killed while the command ran is "unseen": probably the command's.

    `beside`: the command's own processes (by pid) in the kernel's task table at the kill,
    largest first, at most BESIDE_SHOWN. For an unseen victim that is the evidence the log
    has: the kernel found it among them (in the same memory cgroup, for a cgroup's kill)."""
    out = []
    ours = tree.ever | {tree.root}
    for kill in rep["oom_kills"]:
        pid = kill.get("pid")
        when = kill.get("time")  # ISO 8601 UTC: compares as text
        if pid == tree.root:
            role = "command"
        elif pid in tree.ever:
            role = "descendant"
        elif pid not in tree.known and (when is None or (iso(started - 1) or "") <= when
                                                         <= (iso(ended + 1) or "~")):
            role = "unseen"
        else:
            continue
        beside = [{"pid": r["pid"], "name": r["name"], "rss_bytes": r["rss_bytes"]}
                  for r in kill.get("table") or [] if r.get("pid") in ours and r["pid"] != pid]
        out.append(dict(kill, role=role, beside=beside[:BESIDE_SHOWN]))
    return out


def oom_sentence(kill: dict) -> str:
    """`python3 (pid 42, 96 MiB: anon 95 MiB, file 1.0 MiB), memcg /ci, CONSTRAINT_MEMCG`."""
    name = kill["program"]
    parts = [f"pid {kill.get('pid')}"]
    if kill.get("rss_bytes") is not None:
        parts.append(f"{fmt_bytes(kill['rss_bytes'])}: anon {fmt_bytes(kill.get('anon_bytes'))}"
                     f", file {fmt_bytes(kill.get('file_bytes'))}")
    text = f"{name} ({', '.join(parts)})"
    where = []
    if kill.get("oom_memcg"):
        where.append(f"memory cgroup {kill['oom_memcg']}")
    if kill.get("constraint"):
        where.append(kill["constraint"])
    if where:
        text += " [" + ", ".join(where) + "]"
    if kill.get("cmdline"):
        text += ": " + _shorten(" ".join(title_args(kill["cmdline"])), 200)
    elif kill.get("started_as"):
        text += (f": the command itself, started as {_shorten(kill['started_as'], 200)} (it "
                 f"lived less than one tick: the sampler never saw its processes; "
                 f"{kill.get('name') or '?'} is the kernel's name for it)")
    else:
        text += (" (it lived less than one tick: its command line was never seen; "
                 f"{kill.get('name') or '?'} is the kernel's name for it)")
    beside = kill.get("beside")
    if beside and kill.get("role") != "command":
        text += ("; the kernel's table at the kill lists it beside the command's own "
                 + ", ".join(f"{b['name']} (pid {b['pid']}, {fmt_bytes(b['rss_bytes'])})"
                             for b in beside))
    for whose, held, note in oom_held(kill):  # tmpfs outlives the kill, slab may leak
        text += f"; the {whose} held {held}" + (f"; {note}" if note else "")
    return text


def tree_sentence(tree: dict) -> Optional[str]:
    """What the command's own processes did, or that the sampler never saw them."""
    if not tree["peak_rss_bytes"]:
        return None
    if not tree["processes"]:
        return (f"the sampler never saw the command's processes (they lived less than one "
                f"tick); the OOM killer's figure for it: {fmt_bytes(tree['peak_rss_bytes'])} "
                f"RSS at {_t(tree['peak_time'])}")
    lg = tree["largest"]
    return (f"the command's processes peaked at {fmt_bytes(tree['peak_rss_bytes'])} "
            f"RSS at {_t(tree['peak_time'])} ({tree['processes_at_peak']} process(es), "
            f"{tree['processes']} in all)" + _own_memory(tree)
            + (f"; largest: {lg['name']} (pid {lg['pid']}) "
               f"{fmt_bytes(lg['rss_bytes'])}" if lg else ""))


def _own_memory(tree: dict) -> str:
    """`, holding 310 MiB of their own (...)` when sharing makes the RSS sum mislead, and the
    peak of a memory cgroup that held the command alone (the kernel's count).

    Own memory is said only when the PSS tier had read every one of them: for the others it
    is RSS minus file pages, which counts a copy-on-write page once per process, the very
    overcount this sentence is there to undo."""
    own, rss = tree.get("peak_private_bytes"), tree["peak_rss_bytes"]
    text = ""
    if own is not None and tree.get("peak_private_from_pss") == tree["processes_at_peak"] \
            and _shares_much(own, rss):
        text = (f", holding {fmt_bytes(own)} of their own (shared pages counted once: PSS "
                f"read for each)")
    if tree.get("cgroup_peak_bytes") is not None:
        text += (f"; their memory cgroup {tree['cgroup']} (theirs alone) peaked at "
                 f"{fmt_bytes(tree['cgroup_peak_bytes'])} (the kernel's count: each page once, "
                 f"page cache included)")
        m = tree.get("cgroup_makeup")
        made = unit_makeup_text(m, m.get("before_peak_s") or 0) if m else ""
        if made:
            text += f" {made}"
    return text


def _shares_much(part: int, rss: int) -> bool:
    return part < rss * SHARED_WORTH_SAYING and rss - part >= SHARED_WORTH_SAYING_BYTES


def _program_figure(g: dict) -> str:
    """A program's RSS sum, and its PSS when every member's was read and its processes share
    much (a single process's PSS below RSS is only its shared libraries: not worth a word)."""
    text = fmt_bytes(g["rss_bytes"])
    pss = g.get("pss_bytes")
    if pss is not None and g["count"] > 1 and g.get("pss_count") == g["count"] \
            and _shares_much(pss, g["rss_bytes"]):
        text += f" RSS (PSS {fmt_bytes(pss)})"
    return text


OOM_LEAD = {
    "command": "KILLED BY THE OOM KILLER",
    "descendant": "the OOM killer killed a process of the command",
    "unseen": "the OOM killer killed a process while the command ran (it lived less than one "
              "tick, so its parent is unknown: probably the command's)",
}


# -- the short report --------------------------------------------------------------------------
def _t(value: Optional[str]) -> str:
    if not value:
        return "-"
    return value[11:19] + "Z" if len(value) >= 19 else value


def short_report(doc: dict) -> List[str]:
    """A few lines for a job log: what the command did, what the host did, the verdict."""
    cmd, rep, tree = doc["command"], doc["report"], doc["command"]["tree"]
    lines = []
    killed = _killed_by(cmd)
    how = f"was {killed}" if killed else f"exited with status {cmd['exit_status']}"
    lines.append(f"`{_shorten(cmd['cmdline'], 80)}` {how} after "
                 f"{fmt_duration(cmd['duration_s'])}")
    for kill in doc["oom"]:
        lines.append(f"{OOM_LEAD[kill['role']]}: {oom_sentence(kill)}")
    of_command = {o["pid"] for o in doc["oom"]}
    others = [k for k in rep["oom_kills"] if k.get("pid") not in of_command]
    for kill in others:
        lines.append(f"the OOM killer killed another process (not the command's): "
                     f"{oom_sentence(kill)}")
    if not rep["oom_kills"] and rep["oom_counter"]:
        lines.append(f"the kernel counted {rep['oom_counter']} OOM kill(s) but did not say whose "
                     f"(no /dev/kmsg access?)")
    said = tree_sentence(tree)
    if said:
        lines.append(said)
    peak, low = rep["peak"], rep["lowest_available"]
    if peak["used_bytes"] is not None:
        lines.append(f"host: peak used {fmt_bytes(peak['used_bytes'])}"
                     + (f" of {fmt_bytes(peak['total_bytes'])}" if peak["total_bytes"] else "")
                     + f" at {_t(peak['time'])}, lowest available {fmt_bytes(low['bytes'])}")
    if rep["programs"]:
        lines.append("top programs at that peak: " + ", ".join(
            f"{g['name']}" + (f" x{g['count']}" if g["count"] > 1 else "")
            + f" {_program_figure(g)}" for g in rep["programs"][:4]))
    gate = doc["gate"]
    if gate["verdict"]:
        lines.append(gate["verdict"])
    log = doc["log"]
    lines.append(f"log: {log['dir']} ({len(log['segments'])} segment(s)"
                 + (", ended cleanly" if log["clean_end"] else ", NO clean end record")
                 + f"); the whole story: memtrail report {shlex.quote(log['dir'])}")
    return lines


def _killed_by(cmd: dict) -> Optional[str]:
    """`killed by signal 9 (SIGKILL)`, or None when the command exited by itself."""
    if not cmd["signal"]:
        return None
    return f"killed by signal {cmd['exit_status'] - 128} ({cmd['signal']})"


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())  # a multi-line `python -c` script on one line
    return text if len(text) <= width else text[: width - 3] + "..."


def summary_markdown(doc: dict) -> str:
    """The job summary: status line, OOM kills of the command, verdict, then the report."""
    cmd, rep = doc["command"], doc["report"]
    out = [f"### memtrail run: {markdown_code(_shorten(cmd['cmdline'], 100), table=False)}", ""]
    how = _killed_by(cmd) or f"exit status {cmd['exit_status']}"
    out.append(f"- command: {how} after {fmt_duration(cmd['duration_s'])}; memtrail exit "
               f"status {doc['exit_status']}")
    for kill in doc["oom"]:
        out.append(f"- **{OOM_LEAD[kill['role']]}**: {markdown(oom_sentence(kill))}")
    tree = cmd["tree"]
    if tree["peak_rss_bytes"] and tree["processes"]:
        out.append(f"- the command's processes peaked at **{fmt_bytes(tree['peak_rss_bytes'])}"
                   f"** RSS ({tree['processes']} process(es) in all)"
                   + markdown(_own_memory(tree)))  # a cgroup path is the log's: hostile
    elif tree["peak_rss_bytes"]:
        out.append(f"- {tree_sentence(tree)}")
    if doc["gate"]["verdict"]:
        out.append(f"- gate: {markdown(doc['gate']['verdict'])}")
    out.append("")
    # The report's own heading level is ### as well; keep it as a section of this summary.
    out.append(render_markdown(rep).replace("### memtrail:", "#### host:", 1)
               .replace("\n#### ", "\n##### "))
    return "\n".join(out) + "\n"


def _write(path: str, text: str, mode: str = "w") -> Optional[str]:
    """Our own files are replaced whole (output.py); the CI's step summary is appended to."""
    try:
        if mode == "w":
            output.write_text(path, text)
        else:
            with open(path, mode, encoding="utf-8") as fh:
                fh.write(text)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def _html(segments: List[str], path: str) -> Optional[str]:
    try:
        from memtrail import html  # type: ignore[attr-defined]
    except ImportError:
        return "--html: `memtrail html` is not available in this install"
    try:
        status = html.main([*segments, "-o", path])
    except SystemExit as exc:
        status = exc.code
    return None if not status else f"--html: memtrail html exited with status {status}"


# -- memtrail run --------------------------------------------------------------------------
def _default_dir() -> str:
    env = os.environ.get("MEMTRAIL_DIR") or os.environ.get("LOGS_DIRECTORY", "").split(":")[0]
    return env or "./memtrail-logs"


def main_run(argv: List[str]) -> int:
    ap = _run_parser()
    args = ap.parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        ap.error("no command given (memtrail run [options] -- COMMAND ...)")
    # As the sampler records it: the command line is shown and stored redacted everywhere
    # (stderr, the summary that may become $GITHUB_STEP_SUMMARY, --json).
    shown = redact(command)
    directory = os.path.abspath(args.dir or _default_dir())
    sampler_args = ["--interval", repr(args.interval)] if args.interval else []
    gated = bool(args.max_used is not None or args.min_available != (None, None)
                 or args.no_oom or args.max_program)
    try:
        rec = daemon.start(sampler_args, directory, timeout=args.start_timeout)
    except daemon.SamplerError as exc:
        _say(f"{exc}; not running the command")
        return 2
    fg = Foreground(command)
    fg.install()
    try:
        if not args.quiet:
            _say(f"recording to {directory} (sampler pid {rec.pid}); running: "
                 f"{shlex.join(shown)}")
        failed_start = fg.spawn()
        status = failed_start if failed_start is not None else fg.wait()
        stopped = daemon.stop(rec.pid, args.stop_timeout, proc=rec.proc)
    finally:
        if rec.proc.poll() is None:  # interrupted by an exception: never leave it running
            rec.proc.terminate()
            rec.proc.wait()
        fg.restore()
    if stopped.killed or not stopped.clean:
        said = rec.stderr_text()
        _say(stopped.message + (f" ({said})" if said else ""))
    segments = rec.segments()
    if failed_start is not None:
        return failed_start
    rep, tree, ooms = analyze_run(segments, directory, fg)
    rep["label"] = directory
    for kill in ooms:
        if kill["role"] == "command" and not kill.get("cmdline"):
            kill["started_as"] = shlex.join(command)  # what is known of a victim never seen
        # The kernel's figure at the kill is the tree's real peak: it died between two ticks.
        if (kill.get("rss_bytes") or 0) > tree["peak_rss_bytes"]:
            tree.update(peak_rss_bytes=kill["rss_bytes"], peak_time=kill.get("time"),
                        peak_source="oom_kill", peak_private_bytes=None,
                        peak_private_from_pss=0)
    if tree["cgroup"] is not None:
        unit = next((u for u in rep.get("units") or [] if u["path"] == tree["cgroup"]), None)
        if unit is not None:
            tree["cgroup_peak_bytes"] = unit["peak_bytes"]
            m = unit.get("makeup")
            tree["cgroup_makeup"] = dict(m, before_peak_s=round(
                unit["time_unix"] - m["time_unix"], 3)) if m else None
    problem = usable(rep)
    outcomes = evaluate(rep, args.max_used, args.min_available, args.no_oom,
                        args.max_program) if gated and not problem else []
    broken = [o for o in outcomes if not o.passed]
    if status != 0:
        exit_status = status
    elif gated and problem:
        exit_status = 2
    elif broken:
        exit_status = 1
    else:
        exit_status = 0
    if gated and problem:
        text = f"UNUSABLE: the gate cannot tell: {problem}"
    elif gated:
        text = verdict(rep, outcomes)
    else:
        text = None
    doc = {
        "schema": SCHEMA,
        "command": {
            "argv": shown, "cmdline": shlex.join(shown), "pid": fg.pid,
            "exit_status": status,
            "signal": _signame(fg.signal) if fg.signal else None,
            "started": iso(fg.started), "ended": iso(fg.ended),
            "duration_s": round(fg.ended - fg.started, 3),
            "signals_received": [_signame(s) for s in fg.received],
            "tree": tree,
        },
        "oom": ooms,
        "gate": {"given": gated, "passed": (not broken and not problem) if gated else None,
                 "verdict": text,
                 "outcomes": [{"name": o.name, "passed": o.passed, "text": o.text}
                              for o in outcomes]},
        "exit_status": exit_status,
        "log": {"dir": directory, "segments": [os.path.basename(s) for s in segments],
                "clean_end": stopped.clean, "sampler_killed": stopped.killed},
        "report": rep,
    }
    if problem and not gated:
        _say(f"no report: {problem}")
    elif args.full:
        from memtrail.report import render_text

        sys.stderr.write(render_text(rep))
        for line in short_report(doc)[:1] + ([text] if text else []):
            _say(line)
    else:
        lines = short_report(doc)
        if args.quiet:
            lines = [ln for ln in lines if "OOM" in ln or ln.startswith(("FAIL", "UNUSABLE"))
                     or "NO clean end" in ln]
        for line in lines:
            _say(line)
    errors = []
    markdown = summary_markdown(doc)
    if args.summary:
        errors.append(_write(args.summary, markdown))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        errors.append(_write(step_summary, markdown, "a"))
    if args.json:
        errors.append(_write(args.json, json.dumps(doc, indent=1) + "\n"))
    if args.html:
        errors.append(_html(segments, args.html))
    for err in errors:
        if err:
            _say(err)
    if any(errors) and exit_status == 0:
        exit_status = 2
    return exit_status


# -- memtrail stop -----------------------------------------------------------------------------
def main_stop(argv: List[str]) -> int:
    ap = Parser(prog="memtrail stop",
                 description="Stop a sampler started with `memtrail record --daemon --pidfile "
                             "FILE`: SIGTERM (it takes a last tick), wait for the clean end "
                             "record. Exit 0 when the log ended cleanly, 1 when the sampler had "
                             "to be killed or its log has no end record, 2 for a bad pidfile.")
    ap.add_argument("--pidfile", required=True, metavar="FILE")
    ap.add_argument("--timeout", type=_positive, default=30.0, metavar="S",
                    help="seconds to wait after SIGTERM before SIGKILL (default 30)")
    args = ap.parse_args(argv)
    if not os.path.exists(args.pidfile):
        print(f"memtrail stop: {args.pidfile}: no such pidfile (not recording, or already "
              f"stopped)", file=sys.stderr)
        return 2
    pid = daemon.read_pidfile(args.pidfile)
    if pid is None:
        print(f"memtrail stop: {args.pidfile}: not a pidfile (expected a process id)",
              file=sys.stderr)
        return 2
    if not daemon.alive(pid):
        print(f"memtrail stop: the sampler (pid {pid}) is not running (it did not stop "
              f"cleanly: a clean stop removes {args.pidfile}); removing the stale pidfile",
              file=sys.stderr)
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass
        return 1
    if not daemon.is_sampler(pid):
        print(f"memtrail stop: pid {pid} in {args.pidfile} is not a memtrail sampler; "
              f"not signalling it", file=sys.stderr)
        return 2
    stopped = daemon.stop(pid, args.timeout)
    print(f"memtrail: {stopped.message}" + (f"; log: {stopped.segment}" if stopped.segment
                                            else ""), file=sys.stderr)
    if stopped.killed:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass
    return 0 if stopped.clean else 1
