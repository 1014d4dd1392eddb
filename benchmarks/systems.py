"""Registry of the systems under comparison and how to import them."""
import importlib
from dataclasses import dataclass
from types import ModuleType

REFERENCE = "torch eager"


@dataclass(frozen=True)
class System:
    """A way of running a workload, backed by one importable module."""

    name: str
    module: str


# Table order. A workload runs on the systems here that it has an implementation for.
SYSTEMS = (
    System("tapegrad eager", "tapegrad"),
    System("torch eager", "torch"),
)


def import_checked(module: str) -> ModuleType:
    """Import a module, treating a bare namespace package (no __init__.py) as not importable."""
    mod = importlib.import_module(module)
    if getattr(mod, "__file__", None) is None:
        # A directory without __init__.py on sys.path (e.g. ./tapegrad mid-development)
        # imports as an empty namespace package.
        raise ImportError(f"'{module}' is only a namespace package (no {module}/__init__.py)")
    return mod


def load_systems() -> tuple[dict[str, ModuleType], dict[str, str]]:
    """Import every system's module; return ({name: module}, {name: why it was skipped})."""
    loaded, skipped = {}, {}
    for system in SYSTEMS:
        try:
            loaded[system.name] = import_checked(system.module)
        except Exception as exc:  # a half-written package can fail in any way
            skipped[system.name] = f"import {system.module} failed: {type(exc).__name__}: {exc}"
    return loaded, skipped


def module_of(name: str) -> str:
    """The module name backing a system."""
    return next(s.module for s in SYSTEMS if s.name == name)
