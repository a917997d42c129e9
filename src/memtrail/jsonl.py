"""`memtrail export --format jsonl`: a recording as JSON lines in a versioned, flat schema.

The lines are meant to be archived by the thousand (one file per CI job or host and day) and
queried where they land: DuckDB or ClickHouse reading the files directly, OpenSearch or Loki
ingesting them as they are. Those engines want every line to stand on its own, so each object
carries what identifies it (`schema`, `type`, `run`, `host`, `time`, `unix`, the `--label`s),
keys are flat (no nested objects: an event's own details are one JSON string, `detail`), numbers
are numbers, a key means the same thing with the same type in every object, and keys with no
value are left out rather than written as null. docs/export.md is the schema's reference;
adding keys or types keeps the version, changing or removing one bumps it.

Each recording ends with a `summary` object and its `peak_program` objects: the figures
`memtrail report` and `memtrail fleet` give for it, so a query over thousands of recordings
need not replay process rows to find a peak. They come from `report.Analysis` fed the same
ticks, so SQL over the archive and `memtrail fleet` agree by construction, and the test checks
it anyway.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from typing import IO, Dict, List, Optional, Sequence, Tuple

from memtrail import safetext
from memtrail.export import DETAIL_SERIES, PROCESS_SERIES, SYSTEM_SERIES
from memtrail.model import Proc, Run, Tick, oom_victim, replay
from memtrail.programs import program_name
from memtrail.reader import ReadStats
from memtrail.report import Analysis, group_runs
from memtrail.timeparse import iso
from memtrail.triggers import trigger

SCHEMA = "memtrail.jsonl/1"
PEAK_PROGRAMS = 10  # peak_program objects per recording
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
INT_ONLY = {int}
# Objects joined per write (~40 KB): fewer writes than one a tick, and small enough that the
# joined text reuses the heap (2048, ~0.7 MB, took fresh pages from the kernel each time: a
# tenth slower in all, measured)
FLUSH_OBJECTS = 128


def parse_labels(items: Optional[Sequence[str]]) -> Dict[str, str]:
    """`job=nova-tempest` -> {"label_job": "nova-tempest"}; ValueError with one line if bad.
    The `label_` prefix keeps a label from ever shadowing a key of the schema."""
    labels: Dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not LABEL_KEY.match(key):
            raise ValueError(f"--label {item!r}: expected KEY=VALUE, KEY matching "
                             "[a-z][a-z0-9_]*")
        labels["label_" + key] = value
    return labels


def run_id(header: dict) -> str:
    """The recording's stable id: 16 hex digits of SHA-256 over host, boot id and the sampler
    run's start (`started`, 3 decimals), joined by newlines. The same recording exported twice,
    or on two machines, gets the same id; two recordings never share one in practice."""
    started = header.get("started")
    started_s = f"{float(started):.3f}" if isinstance(started, (int, float)) else "?"
    key = f"{header.get('host', '?')}\n{header.get('boot_id', '?')}\n{started_s}"
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _text(value: object) -> str:
    return safetext.terminal(value)


class Writer:
    """One recording's objects; the caller feeds ticks in order and calls `finish`."""

    def __init__(self, out: IO[str], flt, labels: Dict[str, str]) -> None:
        self.out = out
        self.flt = flt
        self.labels = labels
        self.dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self.names: Dict[Proc, str] = {}
        self.started = False
        self.run: Optional[str] = None
        self.host = "?"
        self.n = 0
        # A week of log is ten million objects, nearly all `process` and `system` ones: those
        # are assembled from text made once (per tick: the keys every object starts with; per
        # process: its identity) instead of encoding a dict each. The bytes are the same as
        # emit() gives, which the tests compare.
        self._buf: List[str] = []
        self._head_t: Optional[float] = None
        self._heads: Dict[str, str] = {}
        self._pre: Dict[str, str] = {}  # per object type: the keys before `time`
        self._time_text = ""
        self._labels_text = "".join(f",{self.dumps(k)}:{self.dumps(v)}"
                                    for k, v in labels.items())
        self._system_keys = [(f"{self.dumps(name)}:", attr) for name, attr in SYSTEM_SERIES]
        # The usual `system` object (every figure known, all ints): one getter, one format.
        self._system_all = operator.attrgetter(*(attr for _n, attr in SYSTEM_SERIES))
        self._system_form = "".join(f",{key}%s" for key, _a in self._system_keys) + "}\n"
        self._idents: Dict[Proc, Tuple[object, str, str, str]] = {}

    def name(self, proc: Proc) -> str:
        name = self.names.get(proc)
        if name is None:
            name = self.names[proc] = _text(program_name(proc.cmd, proc.comm))
        return name

    def emit(self, otype: str, t: float, /, **keys: object) -> None:
        obj: dict = {"schema": SCHEMA, "type": otype, "run": self.run, "host": self.host,
                     "time": iso(t), "unix": round(t, 3)}
        obj.update(self.labels)
        for key, value in keys.items():
            if value is not None:
                obj[key] = value
        self._buf.append(self.dumps(obj) + "\n")
        self.n += 1

    def flush(self) -> None:
        if self._buf:
            self.out.write("".join(self._buf))
            self._buf = []

    def _head(self, otype: str, t: float) -> str:
        """What emit() would write before an object's own keys (no closing brace): the keys
        before `time` are the recording's, those after it its labels; only `time` and `unix`
        are made per tick, once for every object of the tick."""
        if t != self._head_t:
            self._head_t, self._heads = t, {}
            # dumps()'s text without its calls: the stamp is ASCII digits and punctuation, a
            # finite float is its repr
            stamp, unix = iso(t), round(t, 3)
            stamp_text = self.dumps(stamp) if stamp is None else f'"{stamp}"'
            unix_text = repr(unix) if unix - unix == 0.0 else self.dumps(unix)
            self._time_text = f',"time":{stamp_text},"unix":{unix_text}'
        head = self._heads.get(otype)
        if head is None:
            dumps = self.dumps
            pre = self._pre.get(otype)
            if pre is None:
                pre = self._pre[otype] = (
                    f'{{"schema":{dumps(SCHEMA)},"type":{dumps(otype)},"run":{dumps(self.run)}'
                    f',"host":{dumps(self.host)}')
            head = self._heads[otype] = pre + self._time_text + self._labels_text
        return head

    def _ident(self, proc: Proc) -> str:
        """A process's identity keys as emit() writes them, remade when a `P` changed it."""
        cached = self._idents.get(proc)
        if cached is not None and cached[0] is proc.cmd and cached[1] == proc.comm \
                and cached[2] == proc.cgroup:
            return cached[3]
        keys = {"pid": proc.pid, "program": self.name(proc), "comm": _text(proc.comm),
                "cmdline": safetext.command(proc.cmd, missing="") or None,
                "cgroup": _text(proc.cgroup) if proc.cgroup else None}
        text = "".join(f",{self.dumps(k)}:{self.dumps(v)}" for k, v in keys.items()
                       if v is not None)
        self._idents[proc] = (proc.cmd, proc.comm, proc.cgroup, text)
        return text

    def _numbers(self, proc, series) -> str:
        parts = []
        for sname, attr in series:
            value = getattr(proc, attr)
            if value is not None:
                parts.append(f',"{sname}":{value if type(value) is int else self.dumps(value)}')
        return "".join(parts)

    def _begin(self, tick: Tick) -> None:
        header = tick.segment.header if tick.segment is not None else {}
        self.run = run_id(header)
        self.host = _text(header.get("host", "?"))
        self._pre, self._head_t = {}, None
        started = header.get("started")
        self.emit("recording", tick.time, boot_id=_text(header.get("boot_id", "?")),
                  kernel=_text(header.get("kernel")) if header.get("kernel") else None,
                  sampler=_text(header.get("sampler")) if header.get("sampler") else None,
                  started=iso(started) if isinstance(started, (int, float)) else None,
                  started_unix=round(started, 3) if isinstance(started, (int, float))
                  else None,
                  interval_s=header.get("interval_s")
                  if isinstance(header.get("interval_s"), (int, float)) else None)

    def tick(self, tick: Tick) -> None:
        if self.run is None:
            self._begin(tick)
        flt = self.flt
        for proc in tick.renamed:  # an exec: the next object names the new program
            self.names.pop(proc, None)
            self._idents.pop(proc, None)
        if not flt.time_ok(tick.time):
            for proc in tick.exited:
                self.names.pop(proc, None)
                self._idents.pop(proc, None)
            self.flush()
            return
        t = tick.time
        if flt.system:
            system, dumps = tick.system, self.dumps
            values = self._system_all(system)
            if set(map(type, values)) == INT_ONLY:  # no None, no float
                self._buf.append(self._head("system", t) + self._system_form % values)
            else:
                parts = [self._head("system", t)]
                for key, attr in self._system_keys:
                    v = getattr(system, attr)
                    if v is not None:
                        parts.append(f",{key}{v if type(v) is int else dumps(v)}")
                parts.append("}\n")
                self._buf.append("".join(parts))
            self.n += 1
        for event in tick.events:
            self.event(event)
        if flt.processes:
            self._processes(tick)
        self.started = True
        if len(self._buf) >= FLUSH_OBJECTS:
            self.flush()

    def _processes(self, tick: Tick) -> None:
        flt, t = self.flt, tick.time
        if not self.started:  # the first tick in the window lists every live process
            changed = dict.fromkeys(tick.procs.values())
        else:  # (one that also exited this tick is skipped below)
            changed = dict.fromkeys([p for p, _ in tick.changes])
        detail = dict.fromkeys(tick.details)
        # The usual object (an RSS change, no detail) written inline: a million a day.
        head, buf, every, started = self._head("process", t), self._buf, \
            flt.programs is None, self.started
        ident, append, inline = self._ident, buf.append, 0
        for proc in changed:
            if proc.exited is not None or not every and not flt.program_ok(self.name(proc)):
                continue
            rss, shared = proc.rss, proc.shared
            if started and proc not in detail and type(rss) is int and type(shared) is int:
                append(f'{head}{ident(proc)},"rss_bytes":{rss},"shared_bytes":{shared}}}\n')
                inline += 1
            else:
                self._process(head, proc, proc in detail or not started)
        self.n += inline
        for proc in detail:
            if proc not in changed and proc.exited is None and flt.program_ok(self.name(proc)):
                self._process(head, proc, True, rss=False)
        for proc in tick.exited:
            self._idents.pop(proc, None)
            name = self.names.pop(proc, None) or _text(program_name(proc.cmd, proc.comm))
            if flt.program_ok(name):  # emit()'s bytes, from the tick's head
                self._buf.append(f'{self._head("exit", t)},"pid":{self.dumps(proc.pid)},'
                                 f'"program":{self.dumps(name)}}}\n')
                self.n += 1

    def _process(self, head: str, proc: Proc, details: bool, rss: bool = True) -> None:
        numbers = self._numbers(proc, PROCESS_SERIES) if rss else ""
        if details:
            numbers += self._numbers(proc, DETAIL_SERIES)
        self._buf.append(f"{head}{self._ident(proc)}{numbers}}}\n")
        self.n += 1

    def event(self, event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        keys: dict = {"kind": _text(event.kind)}
        if event.kind == "oom_kill":
            victim = oom_victim(data)
            keys.update(pid=victim.pid, program=_text(victim.program), comm=_text(victim.name),
                        cmdline=safetext.command(victim.cmd, missing="") or None,
                        rss_bytes=victim.rss_bytes, **victim.parts)
            for key, src in (("oom_constraint", "constraint"), ("cgroup", "task_memcg"),
                             ("oom_cgroup", "oom_memcg")):
                if isinstance(data.get(src), str):
                    keys[key] = _text(data[src])
        elif event.kind == "trigger":
            t = trigger(event.time, data)
            keys.update(pid=t.pid, program=_text(t.program), trigger_rule=_text(t.rule),
                        trigger_condition=_text(t.condition), trigger_signal=_text(t.signal),
                        trigger_result=_text(t.result), trigger_value_bytes=t.value_bytes,
                        trigger_line_bytes=t.line_bytes, trigger_errno=t.errno)
        keys["detail"] = json.dumps(data, ensure_ascii=True, separators=(",", ":"),
                                    sort_keys=True)
        self.emit("event", event.time, **keys)

    def finish(self, rep: dict) -> None:
        """The recording's summary and the programs at its peak (the whole recording, also
        when --from/--to narrowed the rows: a summary of a slice would not match `fleet`)."""
        if self.run is None:
            return
        span, peak = rep["span"], rep["peak"]
        kills = rep["oom_kills"]
        unit_kills = sum(u["oom_kills"] for u in rep["units"])
        end = span["end_unix"] if span["end_unix"] is not None else 0.0
        self.emit("summary", end, start_time=span["start"], start_unix=span["start_unix"],
                  end_time=span["end"], end_unix=span["end_unix"], duration_s=span["duration_s"],
                  ticks=span["ticks"], gap_seconds=span["gap_seconds"],
                  clean_end=span["clean_end"], mem_total_bytes=peak["total_bytes"],
                  peak_used_bytes=peak["used_bytes"], peak_time=peak["time"],
                  lowest_available_bytes=rep["lowest_available"]["bytes"],
                  oom_kills=max(len(kills), rep["oom_counter"], unit_kills),
                  psi_some_us=rep["psi"]["some_us"], psi_full_us=rep["psi"]["full_us"],
                  overruns=span["overruns"])
        when = rep["programs_time"]
        for rank, prog in enumerate(rep["programs"][:PEAK_PROGRAMS], 1):
            self.emit("peak_program", end, rank=rank, program=_text(prog["name"]),
                      processes=prog["count"], rss_bytes=prog["rss_bytes"],
                      private_bytes=prog["private_bytes"], pss_bytes=prog["pss_bytes"],
                      swap_bytes=prog["swap_bytes"], peak_time=when)
        self.flush()


def write_jsonl(paths: Sequence[str], flt, out: IO[str], stats: ReadStats,
                labels: Optional[Dict[str, str]] = None) -> int:
    """Every recording in `paths` as JSON lines; returns the number of objects written."""
    n = 0
    for group in group_runs(paths):
        run = Run()
        writer = Writer(out, flt, labels or {})
        # the summary shows the table at the peak: no growth, no per-program peaks
        analysis = Analysis(top=PEAK_PROGRAMS, growth=False, peaks=False)
        group_stats = ReadStats()
        for tick in replay(list(group), group_stats, run):
            analysis.add(tick, run)
            writer.tick(tick)
        writer.finish(analysis.result(run, group_stats, ", ".join(group)))
        stats.add(group_stats)
        n += writer.n
    return n
