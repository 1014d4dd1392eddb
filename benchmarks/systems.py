"""Registry of the systems under comparison and how to load them."""
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

REFERENCE = "torch eager"


def import_checked(module: str) -> ModuleType:
    """Import a module, treating a bare namespace package (no __init__.py) as not importable."""
    mod = importlib.import_module(module)
    if getattr(mod, "__file__", None) is None:
        # A directory without __init__.py on sys.path (e.g. ./tapegrad mid-development)
        # imports as an empty namespace package.
        raise ImportError(f"'{module}' is only a namespace package (no {module}/__init__.py)")
    return mod


def _tapegrad_compiled() -> ModuleType:
    tg = import_checked("tapegrad")
    if not hasattr(tg, "compile") or not hasattr(tg, "value_and_grad"):
        raise ImportError("tapegrad has no compile()/value_and_grad() yet")
    return tg


def _jax() -> ModuleType:
    jax = import_checked("jax")
    # Every workload is float64; without this jax silently computes in float32.
    jax.config.update("jax_enable_x64", True)
    import_checked("jax.numpy")
    return jax


def _autograd() -> ModuleType:
    ag = import_checked("autograd")
    import_checked("autograd.numpy")
    return ag


@dataclass(frozen=True)
class System:
    """A way of running a workload: its table name, the module it stands on, how to load it."""

    name: str
    module: str
    loader: Callable[[], ModuleType] | None = None

    def load(self) -> ModuleType:
        """The module handed to the workload implementations (raises if unavailable)."""
        return self.loader() if self.loader else import_checked(self.module)


# Table order. A workload runs on the systems here that it has an implementation for.
SYSTEMS = (
    System("tapegrad eager", "tapegrad"),
    System("tapegrad compiled", "tapegrad", _tapegrad_compiled),
    System("tapegrad nn", "tapegrad"),
    System("tapegrad vmap", "tapegrad", _tapegrad_compiled),
    System("torch eager", "torch"),
    System("torch nn", "torch"),
    System("jax jit", "jax", _jax),
    System("autograd", "autograd", _autograd),
    System("numba reference", "numba"),
    System("numpy by hand", "numpy"),
)


def load_systems() -> tuple[dict[str, ModuleType], dict[str, str]]:
    """Load every system; return ({name: module}, {name: why it was skipped})."""
    loaded, skipped = {}, {}
    for system in SYSTEMS:
        try:
            loaded[system.name] = system.load()
        except Exception as exc:  # a half-written package can fail in any way
            skipped[system.name] = f"{system.module} unavailable: {type(exc).__name__}: {exc}"
    return loaded, skipped


def module_of(name: str) -> str:
    """The module name backing a system."""
    return next(s.module for s in SYSTEMS if s.name == name)
