"""The JSON-lines archive in SQL: the shipped DuckDB queries (docs/sql/duckdb/) over a few
hundred generated CI recordings give what `memtrail fleet --json` (and, for the programs at a
peak, `memtrail report --json`) say about the same recordings; and every object follows the
documented schema (the keys every object carries, one JSON type per key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

import archive_gen
import pytest
from conftest import ROOT

from memtrail.fleet import percentile
from memtrail.report import analyze

SQL = ROOT / "docs" / "sql" / "duckdb"
RUNS = 300
DAYS = 10
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    expected = archive_gen.make_archive(str(root), RUNS, days_old=(0.2, DAYS + 5))
    return root, expected


@pytest.fixture(scope="module")
def fleet_rows(archive):
    root, _ = archive
    res = subprocess.run([sys.executable, "-m", "memtrail", "fleet", "--json", "--top", "0",
                          str(root / "logs")], env=ENV, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)["runs"]
    assert len(rows) == RUNS and not [r for r in rows if r["error"]]
    return {r["run"]: r for r in rows}


@pytest.fixture(scope="module")
def con(archive):
    duckdb = pytest.importorskip("duckdb")
    root, _ = archive
    con = duckdb.connect()
    con.execute(f"SET VARIABLE archive = '{root}/archive/**/*.jsonl'")
    con.execute(f"SET VARIABLE days = {DAYS}")
    con.execute((SQL / "archive.sql").read_text())
    return con


def _query(con, name: str) -> list:
    cur = con.execute((SQL / name).read_text())
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def _job(label: str) -> str:
    return label.split("/", 1)[0]


def test_every_object_follows_the_schema(archive):
    root, _ = archive
    types = defaultdict(set)
    seen = set()
    for path in sorted((root / "archive").rglob("*.jsonl"))[:40]:
        for line in path.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            assert obj["schema"] == "memtrail.jsonl/1"
            assert {"type", "run", "host", "time", "unix", "label_job"} <= obj.keys()
            assert obj["time"].endswith("Z") and isinstance(obj["unix"], float)
            seen.add(obj["type"])
            for key, value in obj.items():
                assert not isinstance(value, (dict, list)), f"{key} is not flat"
                assert value is not None, f"{key} is null (absent keys are left out)"
                types[key].add("number" if isinstance(value, (int, float))
                               and not isinstance(value, bool) else type(value).__name__)
    assert seen == {"recording", "system", "process", "exit", "event", "summary",
                    "peak_program"}
    mixed = {k: v for k, v in types.items() if len(v) > 1}
    assert mixed == {}, f"keys with more than one JSON type: {mixed}"


def test_run_id_is_stable_and_per_recording(archive):
    root, expected = archive
    ids = {}
    for rel in list(expected)[:30]:
        first = json.loads((root / "archive" / (rel + ".jsonl")).open().readline())
        ids[rel] = first["run"]
    assert len(set(ids.values())) == len(ids)
    from memtrail import jsonl

    # The id is a function of (host, boot, start) alone, as documented.
    assert jsonl.run_id({"host": "a", "boot_id": "b", "started": 1.0}) == \
        jsonl.run_id({"host": "a", "boot_id": "b", "started": 1.0004, "pid": 9})


def test_oom_jobs_and_victims_match_fleet(con, archive, fleet_rows):
    _, expected = archive
    recent = {label for label, e in expected.items() if e["age_days"] < DAYS}
    want = defaultdict(lambda: {"runs": 0, "with": 0, "kills": 0, "victims": set()})
    for label in recent:
        row, w = fleet_rows[label], want[_job(label)]
        w["runs"] += 1
        w["kills"] += row["oom_kills"]
        w["with"] += row["oom_kills"] > 0
        w["victims"].update(row["oom_victims"])
    got = {r["job"]: r for r in _query(con, "oom_jobs.sql")}
    assert set(got) == {j for j, w in want.items() if w["kills"]}
    for job, r in got.items():
        w = want[job]
        assert (r["runs"], r["runs_with_oom_kills"], r["oom_kills"]) == \
            (w["runs"], w["with"], w["kills"]), job
        assert set(r["victims"].split(",")) == w["victims"]
    # The window matters: old recordings with kills exist and are left out.
    assert any(fleet_rows[label]["oom_kills"] for label in set(expected) - recent)

    victims = defaultdict(lambda: [0, set()])
    for label in recent:
        for name in fleet_rows[label]["oom_victims"]:
            victims[name][0] += 1
            victims[name][1].add(label)
    got_v = {r["program"]: r for r in _query(con, "oom_victims.sql")}
    assert {n: (r["kills"], r["runs"]) for n, r in got_v.items()} == \
        {n: (k, len(runs)) for n, (k, runs) in victims.items()}


def test_peak_by_job_matches_fleet(con, fleet_rows):
    peaks = defaultdict(list)
    for label, row in fleet_rows.items():
        peaks[_job(label)].append(row["peak_used_bytes"])
    got = {r["job"]: r for r in _query(con, "peak_by_job.sql")}
    assert set(got) == set(peaks)
    for job, values in peaks.items():
        values.sort()
        r = got[job]
        assert (r["runs"], r["p50_bytes"], r["p95_bytes"], r["max_bytes"]) == \
            (len(values), percentile(values, 50), percentile(values, 95), values[-1]), job


def test_programs_at_each_jobs_peak_match_report(con, archive, fleet_rows):
    root, _ = archive
    best = {}
    for label, row in sorted(fleet_rows.items()):
        job = _job(label)
        if job not in best or row["peak_used_bytes"] > fleet_rows[best[job]]["peak_used_bytes"]:
            best[job] = label
    rows = _query(con, "programs_at_peak.sql")
    by_job = defaultdict(list)
    for r in rows:
        by_job[r["job"]].append((r["rank"], r["program"], r["processes"], r["rss_bytes"]))
    assert set(by_job) == set(best)
    for job, label in best.items():
        rep = analyze([str(root / "logs" / label)], top=5)
        want = [(i, p["name"], p["count"], p["rss_bytes"])
                for i, p in enumerate(rep["programs"][:5], 1)]
        assert by_job[job] == want, job
        assert {r["peak_used_bytes"] for r in rows if r["job"] == job} == \
            {fleet_rows[label]["peak_used_bytes"]}


def test_clickhouse_queries_agree_with_duckdb(con, archive):
    """docs/sql/clickhouse/ run by the ClickHouse engine itself (chDB, in process) over the
    same archive give the rows the DuckDB queries give (which the tests above check against
    fleet and report)."""
    chdb_session = pytest.importorskip("chdb.session")
    root, _ = archive
    ch_sql = ROOT / "docs" / "sql" / "clickhouse"
    sess = chdb_session.Session()
    sess.query((ch_sql / "archive.sql").read_text().replace(
        "artifacts/**/*.jsonl", f"{root}/archive/**/*.jsonl"))
    keys = {"oom_jobs": ("job", "runs", "runs_with_oom_kills", "oom_kills", "victims"),
            "oom_victims": ("program", "kills", "runs", "jobs"),
            "peak_by_job": ("job", "runs", "p50_bytes", "p95_bytes", "max_bytes", "max_run"),
            "programs_at_peak": ("job", "run", "rank", "program", "processes", "rss_bytes")}
    for name, cols in keys.items():
        text = str(sess.query((ch_sql / f"{name}.sql").read_text(), "JSONEachRow"))
        got = [json.loads(line) for line in text.splitlines() if line.strip()]
        want = _query(con, f"{name}.sql")
        assert want, name
        assert sorted(tuple(r[c] for c in cols) for r in got) == \
            sorted(tuple(r[c] for c in cols) for r in want), name
    sess.close()
