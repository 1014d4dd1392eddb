"""Keep Python's cyclic garbage collector away from numba's import-time objects.

Recording creates a Python object per operation, so the collector runs often; each full collection would walk
the ~100,000 objects numba creates at import. gc.freeze() moves what exists now (and after the kernels load) to
the permanent generation, which makes scalar-heavy recording about a quarter faster. Set TAPEGRAD_NO_GC_FREEZE=1
to opt out.
"""
import gc
import os

_enabled = not os.environ.get("TAPEGRAD_NO_GC_FREEZE")
_after_kernels_done = False


def freeze_startup_objects():
    if _enabled:
        gc.freeze()


def freeze_after_kernels_load():
    """Called after the first backward: numba's cache load creates another batch of long-lived objects."""
    global _after_kernels_done
    if _enabled and not _after_kernels_done:
        _after_kernels_done = True
        gc.freeze()
