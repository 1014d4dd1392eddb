"""long_tape: one long chain of 100,000 scalar operations: recording, backward, memory."""
import json
import os
import subprocess
import sys

from benchmarks.workloads.base import Timed, as_array

NAME = "long_tape"
DESCRIPTION = ("chain y <- sin(y*a) of 100,000 operations on 0-d float64 tensors; record and "
               "backward timed separately; per operation: time, peak memory, bytes of tape")
CASES = ("record", "backward")
RTOL = 1e-9

OPS = 100_000  # two per step: mul, sin
A, Y0 = 0.9, 0.7
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = {"tapegrad eager": "tapegrad", "torch eager": "torch"}


def configure(smoke: bool) -> None:
    """A shorter chain for --smoke."""
    global OPS
    OPS = 2_000 if smoke else 100_000


def repeats(case, mode, default):
    """Each call is tens of milliseconds to a second: fewer repeats."""
    return min(default, 15)


def _leaves(lib):
    return (lib.tensor(A, dtype=lib.float64, requires_grad=True),
            lib.tensor(Y0, dtype=lib.float64, requires_grad=True))


def _forward(a, y0):
    y = y0
    for _ in range(OPS // 2):
        y = (y * a).sin()
    return y


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def result(self):
        """The end of the chain and its gradients wrt a and y0."""
        a, y0 = _leaves(self.lib)
        y = _forward(a, y0)
        y.backward()
        return y.item(), {"d/da": as_array(a.grad), "d/dy0": as_array(y0.grad)}

    def setup(self, case):
        """record: the forward alone; backward: the forward is built untimed before each call."""
        a, y0 = _leaves(self.lib)
        if case == "record":
            return Timed(lambda: _forward(a, y0), per_call=True)

        def build():
            a.grad = y0.grad = None
            return _forward(a, y0)

        return Timed(lambda y: y.backward(), prepare=build)


IMPLS = {"tapegrad eager": TorchLike, "torch eager": TorchLike}


def _peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def probe(module: str, ops: int) -> dict:
    """Run in a fresh process: peak RSS growth of recording and of backward, and tape bytes."""
    import importlib

    global OPS
    OPS = ops
    lib = importlib.import_module(module)
    a, y0 = _leaves(lib)
    _forward(a, y0).backward()  # first use: lazy imports, kernel loading, allocator pools
    a.grad = y0.grad = None
    tape = None
    if module == "tapegrad":
        from tapegrad._tape import current_tape
        tape = current_tape()
        tape.flush()
        tape_before = tape.nbytes()[1]
    if not _peak_rss_reset():
        return {"error": "cannot reset the peak RSS counter (/proc/self/clear_refs)"}
    base = _rss_kb("VmRSS")
    y = _forward(a, y0)
    out = {"record peak": _rss_kb("VmHWM") - base}
    if tape is not None:
        tape.flush()
        out["tape bytes"] = tape.nbytes()[1] - tape_before
    y.backward()
    out["record+backward peak"] = _rss_kb("VmHWM") - base
    return out


def metrics(impls: dict, rows: list) -> list[dict]:
    """Per-operation time (from the timed rows), peak RSS growth and tape bytes (fresh process)."""
    found = []
    for row in rows:
        if row.stats is not None:
            found.append({"system": row.system, "metric": f"{row.case} time per op",
                          "value": row.stats.median / OPS * 1e9, "unit": "ns"})
    for name in impls:
        code = (f"import json; from benchmarks.workloads.long_tape import probe; "
                f"print(json.dumps(probe({MODULES[name]!r}, {OPS})))")
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode:
            raise RuntimeError(f"memory probe of {name} failed: {proc.stderr.strip()[-500:]}")
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        if "error" in got:
            found.append({"system": name, "metric": "memory", "value": None, "unit": got["error"]})
            continue
        for key in ("record peak", "record+backward peak"):
            found.append({"system": name, "metric": f"{key} RSS growth per op",
                          "value": got[key] * 1024 / OPS, "unit": "bytes"})
        if "tape bytes" in got:
            found.append({"system": name, "metric": "tape bytes per op (records + values + ints)",
                          "value": got["tape bytes"] / OPS, "unit": "bytes"})
    return found
