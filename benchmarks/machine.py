"""Facts about the machine and software the benchmarks ran on."""
import importlib.metadata
import os
import platform
import subprocess
import sys

from benchmarks.systems import import_checked

VERSIONED = ("numpy", "scipy", "numba", "torch", "jax", "jaxlib", "autograd", "tapegrad")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, falling back to platform."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Versions of python and the relevant libraries ('not importable' when absent)."""
    out = {"python": f"{platform.python_implementation()} {sys.version.split()[0]}"}
    for name in VERSIONED:
        try:
            version = getattr(import_checked(name), "__version__", None)
            out[name] = str(version or importlib.metadata.version(name))
        except Exception:
            out[name] = "not importable"
    return out


def blas() -> str:
    """The BLAS numpy was built against."""
    try:
        import numpy as np

        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:
        return "unknown"


def git_revision() -> str | None:
    """Short commit of the working tree, with '+dirty' when it has local changes."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        rev = git("rev-parse", "--short", "HEAD")
        return rev + ("+dirty" if git("status", "--porcelain") else "")
    except Exception:
        return None


def machine_info() -> dict:
    """Everything above in one JSON-ready dict."""
    return {
        "cpu": cpu_model(),
        "logical cpus": os.cpu_count(),
        "platform": platform.platform(),
        "blas (numpy)": blas(),
        "load average at start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "git": git_revision(),
    }
