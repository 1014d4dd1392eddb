"""The benchmark suite as a tool: smoke run, refusal of a disagreeing system, --compare.

Nothing here asserts a time.
"""
import json
import os
import subprocess
import sys
import types

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("torch")  # the reference system; the suite exits 2 without it


def _run(args, timeout=600, prelude="pass"):
    """python -m benchmarks ARGS from the repo root, optionally after a line of setup code."""
    code = (f"import runpy, sys; {prelude}; sys.argv = ['benchmarks', *{list(args)!r}]; "
            "runpy.run_module('benchmarks', run_name='__main__', alter_sys=True)")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_smoke_runs_every_workload_on_every_installed_system(tmp_path):
    path = tmp_path / "smoke.json"
    proc = _run(["--smoke", "--json", str(path)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    payload = json.loads(path.read_text())
    from benchmarks.workloads import NAMES

    ran = {r["workload"] for r in payload["results"]}
    assert ran == set(NAMES)
    assert payload["checks"] and all(c["ok"] for c in payload["checks"])
    assert not payload["errors"]
    # every workload's every case ran on torch, except cases smoke deliberately leaves out
    cases = {(r["workload"], r["case"]) for r in payload["results"] if r["system"] == "torch eager"}
    skipped = {n.split(":")[0] for n in payload["notes"]}
    for name in NAMES:
        mod = __import__(f"benchmarks.workloads.{name}", fromlist=["CASES"])
        for case in mod.CASES:
            assert (name, case) in cases or f"{name} {case}" in skipped, (name, case)
    assert "### Correctness" in proc.stdout and "FAILED" not in proc.stdout
    assert {m["workload"] for m in payload["measurements"]} == {"long_tape"}


def test_smoke_without_jax_and_autograd():
    prelude = "sys.modules['jax'] = None; sys.modules['autograd'] = None"
    proc = _run(["--smoke", "--only", "rosenbrock,mlp_step"], prelude=prelude)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "jax jit: skipped" in proc.stdout and "autograd: skipped" in proc.stdout
    assert "| rosenbrock | 1000 points | tapegrad eager | ok |" in proc.stdout


class _Right:
    def __init__(self, lib):
        pass

    def result(self):
        return 1.0, {"d/dx": [1.0, 2.0]}

    def setup(self, case):
        from benchmarks.workloads.base import Timed
        return Timed(lambda: None)


class _Wrong(_Right):
    def result(self):
        return 1.0, {"d/dx": [1.0, 2.0 + 1e-6]}


def test_disagreeing_system_is_reported_and_not_timed():
    from benchmarks.cli import parse_args
    from benchmarks.runner import run

    wl = types.SimpleNamespace(NAME="fake", DESCRIPTION="", CASES=("only",),
                               IMPLS={"torch eager": _Right, "tapegrad eager": _Wrong,
                                      "autograd": _Right})
    options = parse_args(["--quick", "--repeats", "2", "--min-batch-ms", "0.1"])
    out = run([wl], {"torch eager": None, "tapegrad eager": None, "autograd": None}, options)
    by_system = {c["system"]: c for c in out.checks}
    assert not by_system["tapegrad eager"]["ok"]
    assert "d/dx" in by_system["tapegrad eager"]["detail"]
    assert by_system["autograd"]["ok"]
    assert {r.system for r in out.rows} == {"torch eager", "autograd"}
    assert all(r.stats.repeats == 2 for r in out.rows)


def _result(workload, system, median, spread, ratio):
    stats = {"median": median, "q25": median - spread, "q75": median + spread, "min": median,
             "max": median, "calls_per_batch": 1, "repeats": 5, "samples": [median] * 5}
    return {"workload": workload, "case": "c", "system": system, "ratio_vs_reference": ratio,
            "first_call_s": None, "stats": stats}


def test_compare_names_what_got_faster_and_slower(tmp_path):
    old = [_result("w1", "tapegrad eager", 1.0, 0.01, 2.0),
           _result("w2", "tapegrad eager", 1.0, 0.01, 2.0),
           _result("w3", "tapegrad eager", 1.0, 0.2, 2.0),
           _result("w4", "tapegrad eager", 1.0, 0.01, 2.0)]
    new = [_result("w1", "tapegrad eager", 0.5, 0.01, 4.0),   # twice as fast
           _result("w2", "tapegrad eager", 2.0, 0.01, 1.0),   # twice as slow
           _result("w3", "tapegrad eager", 1.1, 0.2, 1.8),    # within the spread
           _result("w5", "tapegrad eager", 1.0, 0.01, 2.0)]
    paths = []
    for name, results in (("old", old), ("new", new)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"schema_version": 1, "results": results}))
        paths.append(str(p))
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--compare", *paths], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines()
            if line.startswith("| w") and not line.startswith("| workload")}
    assert "| faster |" in rows["w1"] and "2.00x" in rows["w1"] and "2.00 -> 4.00" in rows["w1"]
    assert "| slower |" in rows["w2"] and "0.50x" in rows["w2"]
    assert "| same |" in rows["w3"]
    assert set(rows) == {"w1", "w2", "w3"}
    assert "1 faster, 1 slower, 1 within noise" in proc.stdout
    assert "Only in the old run: w4" in proc.stdout and "Only in the new run: w5" in proc.stdout


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_thread_pinning_hands_xla_only_flags_it_parses(monkeypatch, threads):
    """XLA reads XLA_FLAGS at start-up and takes a first word without "--" for a file name, aborting the process
    (jax under --threads 2 did): every word must be a --flag, and the user's own flags stay."""
    from benchmarks.threads import THREAD_ENV_VARS, set_thread_env
    for var in THREAD_ENV_VARS:
        monkeypatch.setenv(var, "unset-by-test")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=true")
    set_thread_env(threads)
    words = os.environ["XLA_FLAGS"].split()
    assert all(w.startswith("--") for w in words)
    assert "--xla_dump_to=/tmp/x" in words
    assert ("--xla_cpu_multi_thread_eigen=false" in words) == (threads == 1)
    assert all(os.environ[var] == str(threads) for var in THREAD_ENV_VARS)
    monkeypatch.delenv("XLA_FLAGS")
    set_thread_env(threads)
    assert all(w.startswith("--") for w in os.environ.get("XLA_FLAGS", "").split())
