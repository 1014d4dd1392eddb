"""Markdown rendering and JSON output of a run."""
import json
import os

SCHEMA_VERSION = 1


def fmt_time(seconds: float) -> str:
    """A duration with 3 significant digits in a readable unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, rule, *rows])


def render_header(meta: dict) -> str:
    """The run's settings and environment as a markdown list."""
    mode = meta["mode"]
    if mode["repeats"]:
        how = (f"{mode['name']}: {mode['repeats']} interleaved repeats per system, "
               f"batches of >= {mode['min_batch_s'] * 1e3:g} ms, warm-up >= {mode['warmup_s']:g} s")
    else:
        how = "smoke: correctness checks and one call per case, nothing timed"
    m, v, t = meta["machine"], meta["versions"], meta["threads"]
    pinned = meta["threads_option"]
    threads = "library defaults" if pinned is None else f"pinned to {pinned}"
    lines = [
        "## tapegrad benchmarks",
        "",
        f"- mode: {how}",
        f"- cpu: {m['cpu']} ({m['logical cpus']} logical CPUs); {m['platform']}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- blas (numpy): {m['blas (numpy)']}",
        f"- threads ({threads}): " + ", ".join(f"{k}={val}" for k, val in t.items()),
        f"- git: {m['git'] or 'unknown'}",
    ]
    load = m["load average at start"]
    if load and load[0] > 0.5:
        lines.append(f"- warning: other processes were busy at start (1-min load {load[0]:.2f} "
                     f"on {m['logical cpus']} CPUs); expect noisy timings")
    return "\n".join(lines)


def _notes(meta: dict, out) -> list[str]:
    notes = [f"- {name}: skipped, {why}" for name, why in meta["skipped_systems"].items()]
    notes += [f"- {c['system']} on {c['workload']}: NOT TIMED, disagrees with {meta['reference']}: "
              f"{c['detail']}" for c in out.checks if not c["ok"]]
    notes += [f"- {n}" for n in out.notes]
    notes += [f"- error: {e}" for e in out.errors]
    return notes


def render_results(meta: dict, out, smoke: bool) -> str:
    """The results table plus notes on anything skipped, refused or failed."""
    if smoke:
        header = ["workload", "case", "system", "one call"]
        rows = [[r.workload, r.case, r.system, "ok"] for r in out.rows]
        table = _table(header, rows)
    else:
        ref = meta["reference"].split()[0]
        header = ["workload", "case", "system", "median", "IQR", "min",
                  f"x faster than {ref}", "first call", "calls x repeats"]
        rows = []
        for r in out.rows:
            s = r.stats
            if s is None:  # a case too slow for this mode ran once, untimed
                continue
            rows.append([r.workload, r.case, r.system, fmt_time(s.median),
                         f"{fmt_time(s.q25)} – {fmt_time(s.q75)}", fmt_time(s.min),
                         "n/a" if r.ratio is None else f"{r.ratio:.2f}",
                         "" if r.first_call is None else fmt_time(r.first_call),
                         f"{s.calls_per_batch} x {s.repeats}"])
        table = _table(header, rows, right={3, 4, 5, 6, 7, 8})
    checks = _table(["workload", "system", "check vs " + meta["reference"]],
                    [[c["workload"], c["system"], "ok" if c["ok"] else "FAILED"]
                     for c in out.checks])
    parts = ["", "### Correctness", "", checks, "", "### Results", "", table or "(nothing ran)"]
    if out.metrics:
        parts += ["", "### Measurements", "", _table(
            ["workload", "system", "measurement", "value"],
            [[m["workload"], m["system"], m["metric"],
              m["unit"] if m["value"] is None else f"{m['value']:.4g} {m['unit']}"]
             for m in out.metrics], right={3})]
    notes = _notes(meta, out)
    if notes:
        parts += ["", "### Notes", "", *notes]
    parts += ["", "### Workloads", ""]
    parts += [f"- {name}: {desc}" for name, desc in meta["workloads"].items()]
    return "\n".join(parts)


def render_listing(workloads, systems, skipped: dict) -> str:
    """What --list prints."""
    lines = ["workloads:"]
    lines += [f"  {wl.NAME:14} cases: {', '.join(wl.CASES)}; {wl.DESCRIPTION}" for wl in workloads]
    lines.append("systems:")
    for s in systems:
        lines.append(f"  {s.name:16} " + (f"unavailable: {skipped[s.name]}" if s.name in skipped
                                          else f"available (module {s.module})"))
    return "\n".join(lines)


def write_json(path: str, meta: dict, out) -> str:
    """Write the whole run as JSON; return the path written."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = {
        "schema_version": SCHEMA_VERSION,
        "meta": meta,
        "checks": out.checks,
        "errors": out.errors,
        "results": [r.to_json() for r in out.rows],
        "measurements": out.metrics,
        "notes": out.notes,
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    return path
