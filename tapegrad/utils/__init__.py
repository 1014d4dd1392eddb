"""tapegrad.utils: opt-in helpers that change process-wide state, which tapegrad never does on its own."""
import gc


def freeze_startup_objects():
    """Move every object alive now into the cyclic garbage collector's permanent generation (gc.freeze()).

    Call it yourself, once your program has imported what it needs, if its collections are slow because they
    re-walk the many objects numpy, numba and tapegrad create at import. It is process-wide and affects your
    objects too: everything alive at the call, yours included, is never examined by the collector again, so
    any of it that is, or later becomes, part of a reference cycle is never freed (a memory leak). gc.unfreeze()
    undoes it. On tapegrad's own scalar benchmark it no longer makes a measurable difference (see README.md).
    """
    gc.freeze()
