"""Runs the correctness checks and the interleaved timing, then hands results to report."""
import sys
import time
import traceback
from dataclasses import dataclass, field

from benchmarks import report
from benchmarks.checks import DEFAULT_RTOL, compare
from benchmarks.cli import Options
from benchmarks.machine import machine_info, versions
from benchmarks.progress import Progress
from benchmarks.systems import REFERENCE, SYSTEMS, load_systems, module_of
from benchmarks.threads import apply_threads, thread_report
from benchmarks.timing import Stats, calibrate, measure, summarise, warm_up
from benchmarks.workloads import load_all


@dataclass
class Row:
    """One (workload, case, system) line of the results."""

    workload: str
    case: str
    system: str
    stats: Stats | None = None
    ratio: float | None = None  # reference median / this median; > 1 means faster

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return {"workload": self.workload, "case": self.case, "system": self.system,
                "ratio_vs_reference": self.ratio,
                "stats": self.stats.to_json() if self.stats else None}


@dataclass
class Outcome:
    """Everything a run produced."""

    rows: list[Row] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)  # {workload, system, ok, detail}
    errors: list[str] = field(default_factory=list)  # problems that kept something from running


def describe(exc: BaseException) -> str:
    """One-line description of an exception, with where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def check(wl, systems: dict, out: Outcome) -> dict:
    """Compare each system's implementation with the reference; return those that agree."""
    rtol = getattr(wl, "RTOL", DEFAULT_RTOL)
    try:
        ref = wl.IMPLS[REFERENCE](systems[REFERENCE]).result()
    except Exception as exc:
        out.errors.append(f"{wl.NAME}: reference {REFERENCE} failed: {describe(exc)}")
        return {}
    passing = {}
    for name, lib in systems.items():
        if name not in wl.IMPLS:
            continue
        try:
            impl = wl.IMPLS[name](lib)
            why = compare(ref if name == REFERENCE else impl.result(), ref, rtol)
        except Exception as exc:
            why = f"raised {describe(exc)}"
        out.checks.append({"workload": wl.NAME, "system": name, "ok": why is None, "detail": why})
        if why is None:
            passing[name] = impl
    return passing


def time_case(wl, case: str, impls: dict, options: Options, progress: Progress, out: Outcome):
    """Warm up and size each system's batch, then time the systems interleaved."""
    mode = options.mode
    label = f"{wl.NAME} {case}"
    batches = {}
    for name, impl in impls.items():
        progress.advance(f"{label}: warm-up {name}", 0)
        try:
            timed = impl.setup(case)
            if mode.repeats:
                warm_up(timed, mode.warmup_s)
                batches[name] = (timed, calibrate(timed, mode.min_batch_s))
            else:
                measure(timed, 1)
                out.rows.append(Row(wl.NAME, case, name))
        except Exception as exc:
            out.errors.append(f"{label} on {name}: {describe(exc)}")
            progress.advance(label, mode.repeats)
        progress.advance(label)
    samples = {name: [] for name in batches}
    for rep in range(mode.repeats):
        for name, (timed, n) in list(batches.items()):
            try:
                samples[name].append(measure(timed, n))
            except Exception as exc:
                out.errors.append(f"{label} on {name}, repeat {rep}: {describe(exc)}")
                del batches[name]
                progress.advance(label, mode.repeats - rep - 1)
            progress.advance(f"{label}: repeat {rep + 1}/{mode.repeats}")
    stats = {name: summarise(samples[name], n) for name, (_, n) in batches.items()}
    ref = stats.get(REFERENCE)
    for name, s in stats.items():
        ratio = ref.median / s.median if ref else None
        out.rows.append(Row(wl.NAME, case, name, s, ratio))


def run(workloads, systems: dict, options: Options) -> Outcome:
    """Check and time every workload on every system that implements it."""
    out = Outcome()
    per_case = options.mode.repeats + 1
    total = sum(len(set(systems) & set(wl.IMPLS)) * (1 + per_case * len(wl.CASES))
                for wl in workloads)
    progress = Progress(total)
    for wl in workloads:
        n_systems = len(set(systems) & set(wl.IMPLS))
        progress.advance(f"{wl.NAME}: correctness checks", 0)
        passing = check(wl, systems, out)
        progress.advance(f"{wl.NAME}: checked", n_systems
                         + per_case * len(wl.CASES) * (n_systems - len(passing)))
        for case in wl.CASES:
            time_case(wl, case, passing, options, progress, out)
    progress.close()
    return out


def main(options: Options) -> int:
    """Run the suite as the command line asks; return the exit code."""
    try:
        workloads = load_all(options.only)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    systems, skipped = load_systems()
    apply_threads(options.threads, {module_of(n): lib for n, lib in systems.items()})
    if options.list_only:
        print(report.render_listing(workloads, SYSTEMS, skipped))
        return 0
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv[1:],
        "mode": vars(options.mode),
        "threads_option": options.threads,
        "machine": machine_info(),
        "versions": versions(),
        "threads": thread_report({module_of(n): lib for n, lib in systems.items()}),
        "reference": REFERENCE,
        "skipped_systems": skipped,
        "workloads": {wl.NAME: wl.DESCRIPTION for wl in workloads},
    }
    print(report.render_header(meta), flush=True)
    if REFERENCE not in systems:
        print(f"error: the reference system {REFERENCE} is required: {skipped[REFERENCE]}",
              file=sys.stderr)
        return 2
    out = run(workloads, systems, options)
    print(report.render_results(meta, out, smoke=options.mode.repeats == 0))
    if options.json_path:
        path = report.write_json(options.json_path, meta, out)
        print(f"\nResults written to {path}", file=sys.stderr)
    failed = out.errors or not all(c["ok"] for c in out.checks)
    return 1 if failed else 0

