"""A kill is explained by the processes that competed for that memory: for a kill inside a memory
cgroup's limit, that cgroup's processes (the kernel's own table, else the cgroup's members just
before); the host's largest only apart and labelled. A host-wide kill keeps the host's table."""

from __future__ import annotations

import json

import scenarios
from scenarios import GiB, Host

from memtrail import html, report, safetext
from memtrail.model import oom_scope, oom_table

JOB = "/ci/job-7"
VICTIM_CMD = ["/usr/bin/python3", "/opt/ci/build.py", "--all"]


def memcg_kill(directory: str, table: bool = True, memcg: bool = True,
               hybrid: bool = False) -> str:
    """A 3 GiB java outside; in the job's cgroup a shell and a python that grows to its limit.
    `hybrid`: a v1/v2 host where the job's v2 path is another one than its v1 memory cgroup
    (the one the kernel names), as the sampler then records them (`cg` and `mcg`)."""
    h = Host(directory, mem_total=8 * GiB)
    h.spawn(700, ["java", "-Xmx3g", "-jar", "/opt/big/service.jar"], 3000, comm="java",
            cg="/system.slice/big.service")
    where = dict(cg="/system.slice/docker-7.scope", mcg=JOB) if hybrid else dict(cg=JOB)
    h.spawn(701, ["/bin/sh", "-c", "make ci"], 3, comm="sh", **where)
    h.spawn(702, VICTIM_CMD, 20, comm="python3", ppid=701, **where)
    h.start_segment_tick()
    for step in range(8):
        h.set_rss(702, 20 + step * 15)
        h.tick(1)
    kill = {"pid": 702, "name": "python3", "total_vm_kib": 200000, "anon_kib": 130000,
            "file_kib": 3000, "shmem_kib": 0, "uid": 0, "oom_score_adj": 0,
            "constraint": "CONSTRAINT_MEMCG" if memcg else "CONSTRAINT_NONE",
            "task_memcg": JOB, "memcg_oom": memcg, "cmd": VICTIM_CMD, "source": "kmsg",
            "invoker": {"name": "python3", "gfp_mask": "0xcc0(GFP_KERNEL)", "order": 0,
                        "oom_score_adj": 0, "pid": 702}}
    if memcg:
        kill["oom_memcg"] = JOB
    if table:
        kill["table"] = [[702, 0, 133000, 0, 0, "python3"], [701, 0, 3072, 0, 0, "sh"]]
        if not memcg:
            kill["table"].insert(0, [700, 0, 3000 * 1024, 0, -900, "java"])
        kill["table_rows"] = len(kill["table"])
    h.event("oom_kill", kill)
    h.exit(702)
    h.tick(3)
    h.stop()
    return directory


def rep_of(capsys, directory: str, *flags: str):
    assert report.main([*flags, directory]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in flags else out


def test_a_memcg_kill_lists_its_cgroup_from_the_kernels_table(tmp_path, capsys):
    d = memcg_kill(str(tmp_path / "log"))
    kill = rep_of(capsys, d, "--json")["oom_kills"][0]
    assert kill["scope"] == "memcg" and kill["memcg"] == JOB
    assert kill["top_source"] == "kernel"
    assert [p["pid"] for p in kill["top"]] == [702, 701]
    victim = kill["top"][0]
    assert victim["cmdline"] == VICTIM_CMD and victim["name"] == "build.py"  # joined by pid
    assert victim["oom_score_adj"] == 0 and victim["swap_bytes"] == 0
    assert kill["top"][1]["cmdline"] == ["/bin/sh", "-c", "make ci"]
    assert kill["table"] == kill["top"] and kill["table_rows"] == 2
    assert [p["pid"] for p in kill["host_top"]][:1] == [700]  # apart, labelled
    assert kill["invoker"] == {"name": "python3", "pid": 702, "gfp_mask": "0xcc0(GFP_KERNEL)",
                               "order": 0, "oom_score_adj": 0}


def test_a_memcg_kill_without_a_table_uses_the_cgroups_members(tmp_path, capsys):
    d = memcg_kill(str(tmp_path / "log"), table=False)
    kill = rep_of(capsys, d, "--json")["oom_kills"][0]
    assert kill["top_source"] == "cgroup"
    assert {p["pid"] for p in kill["top"]} == {701, 702}
    assert kill["table"] == [] and kill["table_rows"] is None


def test_a_hybrid_hosts_kill_without_a_table_finds_members_by_their_v1_memory_cgroup(
        tmp_path, capsys):
    """On a hybrid v1/v2 host the kernel names the v1 memory cgroup, which the processes' v2
    path need not resemble: the members are found by the `mcg` the sampler recorded."""
    d = memcg_kill(str(tmp_path / "log"), table=False, hybrid=True)
    kill = rep_of(capsys, d, "--json")["oom_kills"][0]
    assert kill["scope"] == "memcg" and kill["memcg"] == JOB
    assert kill["top_source"] == "cgroup"
    assert {p["pid"] for p in kill["top"]} == {701, 702}


def test_the_text_never_explains_a_cgroup_kill_by_another_cgroup(tmp_path, capsys):
    text = rep_of(capsys, memcg_kill(str(tmp_path / "log")))
    section = text[text.index("OOM kills: 1"):text.index("Top programs")]
    own, _, host = section.partition("for scale, the largest processes on the whole host")
    assert f"memory cgroup {JOB} reached its limit" in own
    assert f"processes in memory cgroup {JOB} at the kill (the kernel's own table" in own
    assert "make ci" in own and "build.py" in own and "<- killed" in own
    assert "service.jar" not in own and "service.jar" in host
    assert "python3 (pid 702) asked for memory: gfp_mask=0xcc0(GFP_KERNEL), order 0" in own
    assert "memcg: ?" not in text


def test_a_host_wide_kill_keeps_the_host_table_and_says_so(tmp_path, capsys):
    text = rep_of(capsys, memcg_kill(str(tmp_path / "log"), memcg=False))
    assert "the host as a whole ran out of memory" in text
    assert "memcg: ?" not in text and "for scale" not in text
    section = text[text.index("OOM kills: 1"):text.index("Top programs")]
    assert "largest processes at the kill (the kernel's own table: 3 processes)" in section
    assert "service.jar" in section
    kill = rep_of(capsys, memcg_kill(str(tmp_path / "log2"), memcg=False, table=False),
                  "--json")["oom_kills"][0]
    assert kill["scope"] == "host" and kill["top_source"] == "host" and kill["host_top"] is None
    assert kill["top"][0]["pid"] == 700


def test_markdown_lists_the_cgroups_processes(tmp_path, capsys):
    md = rep_of(capsys, memcg_kill(str(tmp_path / "log")), "--markdown")
    assert safetext.markdown("memory cgroup /ci/job-7 reached its limit") in md
    table = md[md.index("at the kill"):md.index("#### Top programs")]
    assert "make ci" in table and "service.jar" not in table


def test_html_headline_names_no_process_of_another_cgroup(tmp_path):
    out = tmp_path / "r.html"
    assert html.main([memcg_kill(str(tmp_path / "log")), "-o", str(out)]) == 0
    page = out.read_text()
    verdict = page[page.index('class="verdict"'):]
    verdict = verdict[:verdict.index("</p>")]
    kill, _, host = verdict.partition("Apart from that cgroup, host memory use peaked")
    assert f"inside memory cgroup {JOB}, at its limit" in kill
    assert "java" not in kill and "service.jar" not in kill and host
    assert "the largest process in its memory cgroup then" in verdict
    assert 'data-table="kernel"' in page and 'data-table="host"' in page


def test_the_old_scenario_still_reads_as_a_host_kill(tmp_path, capsys):
    kill = rep_of(capsys, scenarios.oom(str(tmp_path)), "--json")["oom_kills"][0]
    assert kill["scope"] == "host" and kill["top_source"] == "host"
    assert [p["pid"] for p in kill["top"]] == [501, 500, 502]


def test_table_and_scope_are_read_defensively():
    assert oom_table({"table": "x"}) == []
    rows = oom_table({"table": [[1, 0, 10, None, None, "a", "later"], [2, "u", -5, 0, 0, "b"],
                                [3], "x", [4, None, 20, 4, -1, 7]]})
    assert [(r.pid, r.rss_bytes, r.swap_bytes, r.name) for r in rows] == [
        (4, 20480, 4096, "7"), (1, 10240, None, "a")]
    assert oom_scope({"memcg_oom": True}) == "memcg"
    assert oom_scope({"constraint": "CONSTRAINT_NONE", "task_memcg": "/x"}) == "host"
    assert oom_scope({"oom_memcg": "/x"}) == "memcg"
    assert oom_scope({}) == "host"
