"""cold_start: a fresh Python process that imports the library and computes one gradient."""
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.workloads.base import Timed

NAME = "cold_start"
DESCRIPTION = ("fresh process: import, then value and grad of sin(x*x) + exp(x); wall time of "
               "the whole process; tapegrad with its numba cache warm, and with it empty")
CASES = ("warm cache", "empty cache")
RTOL = 1e-12

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = """
import json
import {module} as lib
x = lib.tensor(0.5, dtype=lib.float64, requires_grad=True)
y = (x * x).sin() + x.exp()
y.backward()
print(json.dumps([y.item(), x.grad.item()]))
"""


def repeats(case, mode, default):
    """An empty cache costs a full numba compile (~30 s): only the full run times it, 3 times."""
    if case == "empty cache":
        return 3 if mode == "full" else None
    return min(default, 10)


def run_fresh(module: str, cache_dir: str | None = None) -> tuple[float, float]:
    """Run the script in a new interpreter from the repo root; return (value, gradient)."""
    env = dict(os.environ)
    if cache_dir is not None:
        # numba writes and reads its cache here instead of next to tapegrad's kernel sources.
        env["NUMBA_CACHE_DIR"] = cache_dir
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(module=module)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"{module} cold start failed: {proc.stderr.strip()[-500:]}")
    value, grad = json.loads(proc.stdout.strip().splitlines()[-1])
    return value, grad


class Fresh:
    """A system whose module is imported in a child process (tapegrad or torch)."""

    MODULE = ""

    def __init__(self, lib):
        pass

    def result(self):
        """Value and gradient computed by a fresh process."""
        value, grad = run_fresh(self.MODULE)
        return value, {"d/dx": grad}

    def setup(self, case):
        """warm cache: the default cache; empty cache: a new empty NUMBA_CACHE_DIR per call."""
        module = self.MODULE
        if case == "warm cache":
            return Timed(lambda: run_fresh(module), per_call=True)

        def empty_dir():
            return tempfile.TemporaryDirectory(prefix="tapegrad-cold-")

        return Timed(lambda d: run_fresh(module, d.name), prepare=empty_dir)


class Tapegrad(Fresh):
    """tapegrad eager."""

    MODULE = "tapegrad"


class Torch(Fresh):
    """torch eager (no JIT cache: both cases are the same for it)."""

    MODULE = "torch"


IMPLS = {"tapegrad eager": Tapegrad, "torch eager": Torch}
