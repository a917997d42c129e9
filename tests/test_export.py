"""`memtrail export`: CSV round-trips the log's numbers, JSONL lines parse, OpenMetrics is valid
for a strict parser of our own and for `promtool check metrics` when it is installed."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import scenarios
from conftest import ROOT, log_text

from memtrail import export, safetext

HOSTILE = 'we"ird\\name\nline2'


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memtrail", "export", *args],
                          capture_output=True, text=True, cwd=ROOT)


def _export(log: str, fmt: str, *extra: str) -> str:
    res = _run(log, "--format", fmt, *extra)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def oom_log(tmp_path_factory) -> str:
    return scenarios.oom(str(tmp_path_factory.mktemp("export") / "log"))


def _log_values(log: str):
    """(time, used bytes) per `s` line and (time, pid, rss bytes) per `p` line, from the text."""
    system, procs = {}, []
    for line in log_text(Path(log)).splitlines():
        parts = line.split(" ")
        if parts[0] == "s":
            f = dict(zip(scenarios.S_FIELDS, map(int, parts[2:])))
            system[parts[1]] = (f["mem_total"] - f["mem_available"]) * 1024
        elif parts[0] == "p":
            procs.append((parts[1], int(parts[2]), int(parts[3]) * 1024))
    return system, procs


# -- CSV ---------------------------------------------------------------------------------------
def test_csv_parses_and_round_trips_the_numbers(oom_log):
    rows = list(csv.DictReader(io.StringIO(_export(oom_log, "csv"))))
    assert rows and tuple(rows[0]) == export.CSV_COLUMNS
    system, procs = _log_values(oom_log)
    used = {r["unix"]: int(r["value"]) for r in rows if r["series"] == "mem_used_bytes"}
    assert used == system  # every tick, exact
    rss = [(r["unix"], int(r["pid"]), int(r["value"])) for r in rows
           if r["series"] == "rss_bytes"]
    assert sorted(rss) == sorted(procs)  # every recorded value, no more, no less
    for r in rows:
        when = datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
        assert abs(when - float(r["unix"])) < 0.001
        assert r["host"] == "sim-1"
    kills = [r for r in rows if r["series"] == "oom_kill"]
    assert [(k["pid"], k["program"]) for k in kills] == [("501", "hog.py")]
    exits = [r for r in rows if r["series"] == "exit"]
    assert [e["pid"] for e in exits] == ["501"]


def test_window_and_program_filter(oom_log):
    rows = list(csv.DictReader(io.StringIO(
        _export(oom_log, "csv", "--from", "+5s", "--to", "22:00:12", "--program", "hog.py"))))
    times = sorted({float(r["unix"]) for r in rows})
    assert times[0] == scenarios.T0 + 5 and times[-1] == scenarios.T0 + 12
    procs = [r for r in rows if r["pid"]]
    assert procs and {r["program"] for r in procs} == {"hog.py"}
    # The first tick of the window lists the live processes even if they did not change.
    assert [r for r in procs if float(r["unix"]) == times[0] and r["series"] == "rss_bytes"]
    last = list(csv.DictReader(io.StringIO(_export(oom_log, "csv", "--from", "-3s",
                                                   "--no-processes"))))
    assert {r["series"] for r in last} >= {"mem_used_bytes"} and not any(r["pid"] for r in last)
    assert float(last[0]["unix"]) == scenarios.T0 + 27


def test_bad_time_is_one_line_exit_2(oom_log, tmp_path):
    for args in (["--from", "yesterday-ish"], ["--from", "+20s", "--to", "+10s"]):
        res = _run(oom_log, "--format", "csv", *args)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    res = _run(str(tmp_path / "missing"), "--format", "csv")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_output_file_is_written_atomically(oom_log, tmp_path):
    out = tmp_path / "x.csv"
    res = _run(oom_log, "--format", "csv", "-o", str(out))
    assert res.returncode == 0 and res.stdout == ""
    assert out.read_text().startswith("time,unix,host,series")
    assert not list(tmp_path.glob("*.tmp"))


# -- JSONL -------------------------------------------------------------------------------------
def test_jsonl_one_object_per_record(oom_log):
    lines = _export(oom_log, "jsonl").splitlines()
    objs = [json.loads(line) for line in lines]
    kinds = {o["type"] for o in objs}
    assert kinds == {"recording", "system", "process", "exit", "event", "summary",
                     "peak_program"}
    for o in objs:
        assert o["time"].endswith("Z") and isinstance(o["unix"], float) and o["host"] == "sim-1"
        assert o["schema"] == "memtrail.jsonl/1" and o["run"] == objs[0]["run"]
    system, _ = _log_values(oom_log)
    assert {f"{o['unix']:.3f}": o["mem_used_bytes"] for o in objs
            if o["type"] == "system"} == system
    kill = next(o for o in objs if o["type"] == "event" and o["kind"] == "oom_kill")
    assert kill["pid"] == 501 and kill["program"] == "hog.py"
    assert json.loads(kill["detail"])["cmd"] == scenarios.OOM_VICTIM_CMD
    assert kill["cmdline"] == " ".join(scenarios.OOM_VICTIM_CMD)
    proc = next(o for o in objs if o["type"] == "process" and o["pid"] == 501)
    assert proc["cmdline"] == " ".join(scenarios.OOM_VICTIM_CMD) and proc["rss_bytes"] > 0


# -- OpenMetrics -------------------------------------------------------------------------------
NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = {"gauge", "counter", "stateset", "info", "histogram", "gaugehistogram", "summary",
         "unknown"}


def _labels(text: str) -> dict:
    """Parse `a="x",b="y"`; raises on any escape other than \\\\, \\" and \\n."""
    out: dict = {}
    i = 0
    while i < len(text):
        m = re.match(r"([^=]+)=\"", text[i:])
        assert m, f"bad label at {text[i:]!r}"
        name = m.group(1)
        assert LABEL_NAME_RE.match(name) and not name.startswith("__"), name
        i += m.end()
        value = []
        while True:
            c = text[i]
            if c == "\\":
                nxt = text[i + 1]
                assert nxt in '\\"n', f"bad escape \\{nxt}"
                value.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                assert c != "\n"
                value.append(c)
                i += 1
        assert name not in out, f"duplicate label {name}"
        out[name] = "".join(value)
        if i < len(text):
            assert text[i] == ",", text[i:]
            i += 1
    return out


def parse_openmetrics(text: str) -> dict:
    """A strict reader of the OpenMetrics 1.0 text format subset we write: families with
    TYPE/UNIT/HELP before their samples, never interleaved, unique label sets, `# EOF` last."""
    assert text.endswith("# EOF\n"), "must end with # EOF and a newline"
    lines = text[:-1].split("\n")
    assert lines[-1] == "# EOF" and "# EOF" not in lines[:-1]
    families: dict = {}
    current = None
    for line in lines[:-1]:
        assert line and line == line.strip(), f"blank or padded line {line!r}"
        if line.startswith("#"):
            m = re.match(r"^# (TYPE|UNIT|HELP) (\S+) ?(.*)$", line)
            assert m, f"bad descriptor {line!r}"
            kind, name, rest = m.groups()
            assert NAME_RE.match(name), name
            if current is None or current["name"] != name:
                assert name not in families, f"family {name} split in two"
                current = families[name] = {"name": name, "type": "unknown", "unit": "",
                                            "help": None, "samples": {}}
            assert not current["samples"], f"descriptor after samples in {name}"
            if kind == "TYPE":
                assert rest in TYPES, rest
                current["type"] = rest
            elif kind == "UNIT":
                assert name.endswith("_" + rest), f"{name} must end with its unit {rest}"
                current["unit"] = rest
            else:
                current["help"] = rest
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        assert m, f"bad sample {line!r} (timestamps are not expected either)"
        name, _, labels, value = m.groups()
        assert current is not None, "sample before any family"
        fam = current["name"]
        allowed = {fam + "_total", fam + "_created"} if current["type"] == "counter" \
            else {fam}
        assert name in allowed, f"sample {name} outside its family {fam}"
        labelset = tuple(sorted(_labels(labels or "").items()))
        assert (name, labelset) not in current["samples"], f"duplicate {name}{labelset}"
        float(value)
        assert value not in ("inf", "nan") and not value.startswith("+")
        current["samples"][(name, labelset)] = float(value)
    for fam in families.values():
        assert fam["samples"], f"{fam['name']} has no samples"
        assert fam["help"], f"{fam['name']} has no HELP"
    return families


def test_openmetrics_strict(oom_log):
    fams = parse_openmetrics(_export(oom_log, "openmetrics"))

    def value(name, **labels):
        return fams[name]["samples"][(name, tuple(sorted({"host": "sim-1", **labels}
                                                         .items())))]

    assert fams["memtrail_memory_used_bytes"]["unit"] == "bytes"
    system, _ = _log_values(oom_log)
    assert value("memtrail_memory_used_bytes") == system[max(system)]
    assert value("memtrail_memory_peak_used_bytes") == max(system.values())
    assert value("memtrail_oom_kills") == 1
    assert value("memtrail_oom_kill_timestamp_seconds", pid="501", program="hog.py") == \
        scenarios.T0 + 21
    assert value("memtrail_program_processes", program="service.jar") == 1
    assert ("memtrail_program_rss_bytes",
            (("host", "sim-1"), ("program", "hog.py"))) not in \
        fams["memtrail_program_rss_bytes"]["samples"]  # killed before the last sample


def test_openmetrics_at_to_time_and_hostile_labels(tmp_path):
    h = scenarios.Host(str(tmp_path / "log"), host="h\"1")
    h.spawn(1, [HOSTILE, "x"], 100)
    h.spawn(2, ["/usr/bin/python3", "/srv/grow.py"], 10)
    h.start_segment_tick()
    for i in range(10):
        h.set_rss(2, 10 + 100 * i)
        h.tick(1)
    h.stop()
    text = _export(str(tmp_path / "log"), "openmetrics", "--to", "+4s")
    fams = parse_openmetrics(text)
    samples = fams["memtrail_program_rss_bytes"]["samples"]
    progs = {dict(k[1])["program"]: v for k, v in samples.items()}
    # quote and backslash round-trip through the exposition's escapes; the newline is shown
    # as the two characters \n (safetext.label): a label value is one line
    assert progs[safetext.terminal(HOSTILE.split("/")[-1])] == 100 * 1024 * 1024
    # tick i is at T0 + 1 + i: at +4s the value set in step 3, not the last one
    assert progs["grow.py"] == (10 + 100 * 3) * 1024 * 1024
    assert {dict(k[1])["host"] for k in samples} == {'h"1'}
    end = fams["memtrail_window_end_timestamp_seconds"]["samples"]
    assert list(end.values()) == [scenarios.T0 + 4]


def test_strict_parser_rejects_what_it_should():
    good = "# TYPE a_bytes gauge\n# UNIT a_bytes bytes\n# HELP a_bytes A.\na_bytes{x=\"1\"} 2\n"
    parse_openmetrics(good + "# EOF\n")
    eof = "# EOF\n"
    for bad in (good,  # no EOF
                good + eof + "more\n",
                good.replace('x="1"', 'x="a\\tb"') + eof,  # bad escape
                good.replace("UNIT a_bytes bytes", "UNIT a_bytes seconds") + eof,
                good + "b 1\n" + eof,  # sample outside its family
                good + 'a_bytes{x="1"} 3\n' + eof,  # duplicate label set
                good.replace("# HELP a_bytes A.\n", "") + eof,
                good.replace("} 2", "} 2 1763676000") + eof):  # timestamp
        with pytest.raises(AssertionError):
            parse_openmetrics(bad)


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian: apt-get install prometheus)")
def test_promtool_check_metrics(oom_log, tmp_path):
    h = scenarios.Host(str(tmp_path / "log"), host="h\"1")
    h.spawn(1, [HOSTILE], 100)
    h.start_segment_tick()
    h.tick(3)
    h.stop()
    for text in (_export(oom_log, "openmetrics"),
                 _export(str(tmp_path / "log"), "openmetrics")):
        res = subprocess.run(["promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr


def _psi_recording(path: Path, started: float, some_us: list) -> str:
    """A minimal v1 recording whose `s` lines carry the given PSI some counters (1 s apart)."""
    path.mkdir()
    names = ["mem_total", "mem_available", "psi_some_us", "psi_full_us"]
    head = {"format": 1, "host": "h", "boot_id": "b", "started": started, "pid": 1,
            "interval_s": 1.0, "fields": {"s": names}}
    lines = [f"H {started:.3f} memtrail 1 {json.dumps(head)}"]
    lines += [f"s {started + i:.3f} 8000000 4000000 {v} 0" for i, v in enumerate(some_us)]
    (path / "memtrail-20260101T000000Z-000.log").write_text("\n".join(lines) + "\n")
    return str(path)


def test_stall_time_never_spans_two_recordings(tmp_path):
    """The kernel's PSI counters run since boot: a second recording an hour later in the same
    boot starts 3000 s further on, and that is not stall either recording saw."""
    a = _psi_recording(tmp_path / "a", 1_700_000_000.0, [0, 500_000, 1_000_000])
    b = _psi_recording(tmp_path / "b", 1_700_003_600.0, [3_001_000_000, 3_001_250_000])
    stall = _labels_value(_export_many([a, b], "openmetrics"),
                          "memtrail_memory_stall_some_seconds")
    assert stall == pytest.approx(1.25)


def _export_many(paths: list, fmt: str) -> str:
    run = _run(*paths, "--format", fmt)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _labels_value(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def test_jsonl_lines_are_what_encoding_their_object_gives(oom_log, tmp_path):
    """Most jsonl objects are assembled from text made once per tick (a week is ten million of
    them); each must still be exactly the canonical encoding of its object, key order
    included, as one json.dumps of it would give: for a full `s` layout (one format) and for
    a sampler that wrote three system fields (the rest missing, key by key)."""
    short = tmp_path / "short"
    short.mkdir()
    (short / "memtrail-20231114T221320Z-000.log").write_text(
        'H 1700000000.000 memtrail 1 {"format":1,"host":"h","boot_id":"b","started":1,'
        '"fields":{"p":["pid","rss","shared"],"s":["mem_total","mem_free","mem_available"]}}\n'
        's 1700000000.000 4000000 1000 2000\n'
        'P 1700000000.000 7 100 1 0 {"comm":"a","cmd":["a"]}\n'
        'p 1700000000.000 7 2048 512\n'
        's 1700000001.000 4000000 900 1900\n'
        'p 1700000001.000 7 4096 512\n'
        'X 1700000001.000 7\n'
        's 1700000002.000 4000000 900 1900\n')
    for log in (oom_log, str(short)):
        lines = _export(log, "jsonl", "--label", "job=x").splitlines()
        kinds = set()
        for line in lines:
            obj = json.loads(line)
            kinds.add(obj["type"])
            assert json.dumps(obj, ensure_ascii=False, separators=(",", ":")) == line
        assert {"system", "process", "exit"} <= kinds
