"""Runs the correctness checks and the interleaved timing, then hands results to report."""
import os
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
    first_call: float | None = None  # seconds of the first call after setup (JIT compile included)

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return {"workload": self.workload, "case": self.case, "system": self.system,
                "ratio_vs_reference": self.ratio, "first_call_s": self.first_call,
                "stats": self.stats.to_json() if self.stats else None}


@dataclass
class Outcome:
    """Everything a run produced."""

    rows: list[Row] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)  # {workload, system, ok, detail}
    errors: list[str] = field(default_factory=list)  # problems that kept something from running
    notes: list[str] = field(default_factory=list)  # things deliberately left out
    metrics: list[dict] = field(default_factory=list)  # {workload, system, metric, value, unit}


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


def runs_case(impl, case: str) -> bool:
    """Whether an implementation provides this case (impl.CASES, default all of them)."""
    return case in getattr(impl, "CASES", (case,))


def case_repeats(wl, case: str, mode) -> int | None:
    """Timed repeats of one case: the mode's, unless the workload caps a slow case (None: skip it)."""
    capped = getattr(wl, "repeats", None)
    return mode.repeats if capped is None else capped(case, mode.name, mode.repeats)


def time_case(wl, case: str, impls: dict, options: Options, progress: Progress, out: Outcome):
    """Warm up and size each system's batch, then time the systems interleaved."""
    mode = options.mode
    repeats = case_repeats(wl, case, mode)
    label = f"{wl.NAME} {case}"
    impls = {name: impl for name, impl in impls.items() if runs_case(impl, case)}
    if repeats is None:
        out.notes.append(f"{label}: not run in {mode.name} mode (too slow); the full run has it")
        progress.advance(label, len(impls) * (mode.repeats + 1))
        return
    batches, first = {}, {}
    for name, impl in impls.items():
        progress.advance(f"{label}: warm-up {name}", 0)
        try:
            timed = impl.setup(case)
            first[name] = measure(timed, 1)
            if repeats:
                warm_up(timed, mode.warmup_s)
                batches[name] = (timed, calibrate(timed, mode.min_batch_s))
            else:
                out.rows.append(Row(wl.NAME, case, name, first_call=first[name]))
        except Exception as exc:
            out.errors.append(f"{label} on {name}: {describe(exc)}")
            progress.advance(label, mode.repeats)
        progress.advance(label)
    samples = {name: [] for name in batches}
    for rep in range(repeats):
        for name, (timed, n) in list(batches.items()):
            try:
                samples[name].append(measure(timed, n))
            except Exception as exc:
                out.errors.append(f"{label} on {name}, repeat {rep}: {describe(exc)}")
                del batches[name]
                progress.advance(label, repeats - rep - 1)
            progress.advance(f"{label}: repeat {rep + 1}/{repeats}")
    progress.advance(label, len(impls) * (mode.repeats - min(repeats, mode.repeats)))
    stats = {name: summarise(samples[name], n) for name, (_, n) in batches.items()}
    ref = stats.get(REFERENCE)
    for name, s in stats.items():
        ratio = ref.median / s.median if ref else None
        out.rows.append(Row(wl.NAME, case, name, s, ratio, first[name]))


def collect_metrics(wl, impls: dict, out: Outcome) -> None:
    """The workload's extra measurements (memory, bytes per record, ...), if it has any."""
    metrics = getattr(wl, "metrics", None)
    if metrics is None or not impls:
        return
    try:
        for m in metrics(impls, [r for r in out.rows if r.workload == wl.NAME]):
            out.metrics.append({"workload": wl.NAME, **m})
    except Exception as exc:
        out.errors.append(f"{wl.NAME} metrics: {describe(exc)}")


def run(workloads, systems: dict, options: Options) -> Outcome:
    """Check and time every workload on every system that implements it."""
    out = Outcome()
    per_case = options.mode.repeats + 1
    total = sum(len(set(systems) & set(wl.IMPLS)) * (1 + per_case * len(wl.CASES))
                for wl in workloads)
    progress = Progress(total)
    for wl in workloads:
        configure = getattr(wl, "configure", None)
        if configure:
            configure(smoke=options.mode.repeats == 0)
        n_systems = len(set(systems) & set(wl.IMPLS))
        progress.advance(f"{wl.NAME}: correctness checks", 0)
        passing = check(wl, systems, out)
        progress.advance(f"{wl.NAME}: checked", n_systems)
        for case in wl.CASES:
            progress.advance(wl.NAME, per_case * sum(
                1 for name in wl.IMPLS if name in systems and (
                    name not in passing or not runs_case(passing[name], case))))
            time_case(wl, case, passing, options, progress, out)
        progress.advance(f"{wl.NAME}: measurements", 0)
        collect_metrics(wl, passing, out)
    progress.close()
    return out


def draw_plot(meta: dict, out: Outcome, path: str) -> str:
    """Draw the ratio plot; return a line saying where, or why not."""
    from benchmarks.plot import plot_ratios

    rows = [r.to_json() for r in out.rows]
    if not any(r["ratio_vs_reference"] for r in rows):
        return "No plot: nothing was timed against the reference"
    threads = meta["threads_option"]
    title = (f"tapegrad benchmarks, {meta['machine']['cpu']}, threads: "
             f"{'library defaults' if threads is None else threads}, {meta['created']}")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        drawn = plot_ratios(rows, REFERENCE, path, title)
    except Exception as exc:
        return f"No plot: {describe(exc)}"
    return f"Plot drawn to {drawn}" if drawn else "No plot: matplotlib is not installed"


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
    if options.plot_path:
        print(draw_plot(meta, out, options.plot_path), file=sys.stderr)
    failed = out.errors or not all(c["ok"] for c in out.checks)
    return 1 if failed else 0

