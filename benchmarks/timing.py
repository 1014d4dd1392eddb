"""Clocking batches of calls, warming up, sizing batches, and summarising samples."""
import gc
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from benchmarks.workloads.base import Timed


def measure(timed: Timed, n: int) -> float:
    """Seconds per call, averaged over a batch of n calls."""
    # Collect leftovers from the previous batch untimed, but keep gc enabled while timing:
    # a system that creates reference cycles should pay for collecting them.
    gc.collect()
    fn, prepare, clock = timed.fn, timed.prepare, time.perf_counter
    if not timed.isolated:
        t0 = clock()
        for _ in range(n):
            fn()
        return (clock() - t0) / n
    total = 0.0
    for _ in range(n):
        if prepare is None:
            t0 = clock()
            out = fn()
            total += clock() - t0
        else:
            arg = prepare()
            t0 = clock()
            out = fn(arg)
            total += clock() - t0
            del arg
        del out
    return total / n


def warm_up(timed: Timed, seconds: float, min_calls: int = 2) -> None:
    """Call repeatedly (JIT compilation, caches, allocators) for at least `seconds`."""
    start = time.perf_counter()
    calls = 0
    while calls < min_calls or time.perf_counter() - start < seconds:
        measure(timed, 1)
        calls += 1


def calibrate(timed: Timed, min_batch_s: float) -> int:
    """The number of calls per batch needed for a batch to take at least min_batch_s."""
    n = 1
    while True:
        spent = measure(timed, n) * n
        if spent >= min_batch_s:
            return n
        # Overshoot by 20% so the next try usually succeeds despite noise.
        grow = math.ceil(n * 1.2 * min_batch_s / spent) if spent > 0 else n * 10
        n = max(n + 1, min(grow, n * 100))


@dataclass(frozen=True)
class Stats:
    """Summary of per-call times (seconds) over the repeats."""

    median: float
    q25: float
    q75: float
    min: float
    max: float
    calls_per_batch: int
    repeats: int
    samples: tuple[float, ...]

    def to_json(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["samples"] = list(self.samples)
        return d


def summarise(samples: list[float], calls_per_batch: int) -> Stats:
    """Stats of per-call samples."""
    a = np.asarray(samples)
    q25, med, q75 = np.percentile(a, [25, 50, 75])
    return Stats(float(med), float(q25), float(q75), float(a.min()), float(a.max()),
                 calls_per_batch, len(samples), tuple(float(s) for s in samples))
