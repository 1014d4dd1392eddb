"""Command-line options; must stay free of numpy/torch imports (see __main__)."""
import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """How hard to time: repeats per system, minimum batch time, warm-up time."""

    name: str
    repeats: int
    min_batch_s: float
    warmup_s: float


DEFAULT_JSON = "bench-results/latest.json"

MODES = {
    "full": Mode("full", repeats=41, min_batch_s=0.020, warmup_s=0.3),
    "quick": Mode("quick", repeats=9, min_batch_s=0.010, warmup_s=0.05),
    "smoke": Mode("smoke", repeats=0, min_batch_s=0.0, warmup_s=0.0),
}


@dataclass(frozen=True)
class Options:
    """Parsed command line."""

    mode: Mode
    only: tuple[str, ...] | None
    threads: int | None
    json_path: str | None
    plot_path: str | None
    list_only: bool
    compare: tuple[str, str] | None = None


def parse_args(argv: list[str]) -> Options:
    """Parse argv into Options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time tapegrad workloads against torch eager and other installed systems.",
    )
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="fewer repeats and shorter batches")
    speed.add_argument("--smoke", action="store_true",
                       help="correctness checks plus one call of each case; no timing (for CI)")
    p.add_argument("--only", metavar="NAME[,NAME]", help="run only these workloads")
    p.add_argument("--threads", type=int, metavar="N",
                   help="pin torch/numba/BLAS/OpenMP threads to N (default: library defaults)")
    p.add_argument("--json", metavar="PATH",
                   help=f"where to write results (default: {DEFAULT_JSON}; --smoke writes "
                        "JSON only when this is given)")
    p.add_argument("--plot", metavar="PATH",
                   help="where to draw the PNG of ratios (default: the JSON path with .png; "
                        "needs matplotlib; never in --smoke)")
    p.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="print which cases got faster or slower between two runs, then exit")
    p.add_argument("--repeats", type=int, metavar="R", help="override the number of timed repeats")
    p.add_argument("--min-batch-ms", type=float, metavar="MS",
                   help="override the minimum duration of one timed batch")
    p.add_argument("--list", action="store_true", help="list workloads and systems, then exit")
    a = p.parse_args(argv)
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be >= 1")
    mode = MODES["smoke" if a.smoke else "quick" if a.quick else "full"]
    if (a.repeats is not None and a.repeats < 1) or (
            a.min_batch_ms is not None and a.min_batch_ms <= 0):
        p.error("--repeats and --min-batch-ms must be positive")
    if not a.smoke and (a.repeats is not None or a.min_batch_ms is not None):
        mode = Mode(mode.name, a.repeats or mode.repeats,
                    mode.min_batch_s if a.min_batch_ms is None else a.min_batch_ms / 1000,
                    mode.warmup_s)
    only = tuple(n.strip() for n in a.only.split(",") if n.strip()) if a.only else None
    json_path = a.json or (None if a.smoke else DEFAULT_JSON)
    plot_path = None if a.smoke else a.plot or (
        json_path[:-5] if json_path.endswith(".json") else json_path) + ".png"
    return Options(mode=mode, only=only, threads=a.threads, json_path=json_path,
                   plot_path=plot_path, list_only=a.list,
                   compare=tuple(a.compare) if a.compare else None)
