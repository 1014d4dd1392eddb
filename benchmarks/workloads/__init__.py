"""Workload registry: one module per workload; see base.py for the interface."""
import importlib
from types import ModuleType

# Table order. To add a workload, add its module here.
NAMES = (
    "scalar_chain",
    "mlp_step",
    "mlp_large",
    "elementwise",
    "reduce_broadcast",
    "rnn",
    "rosenbrock",
    "long_tape",
    "cold_start",
)


def load(name: str) -> ModuleType:
    """Import the workload module called name."""
    return importlib.import_module(f"{__name__}.{name}")


def load_all(only: tuple[str, ...] | None = None) -> list[ModuleType]:
    """Import the selected workloads (all when only is None), in table order."""
    unknown = sorted(set(only or ()) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return [load(n) for n in NAMES if only is None or n in only]
