"""tapegrad.utils: opt-in helpers that change process-wide state, which tapegrad never does on its own."""
import gc


def freeze_startup_objects():
    """Move every object alive now into the cyclic garbage collector's permanent generation (gc.freeze()).

    Call it yourself, after a first backward (numba loads the compiled kernels then: some 50,000 of the ~125,000
    objects a full collection would otherwise re-walk each time), if your program keeps enough tensors alive for
    those collections to show. It is process-wide and affects your objects too: everything alive at the call,
    yours included, is never examined by the collector again, so any of it that is, or later becomes, part of a
    reference cycle is never freed (a memory leak). gc.unfreeze() undoes it. Scalar code that drops its tensors
    as it goes triggers no collection and gains nothing (see README.md).
    """
    gc.freeze()
