"""numba code only: the reverse sweep and the backward kernels it calls.

numba's on-disk cache is keyed on each function's own source file, so a cached sweep would keep calling the
old version of a kernel edited in another file. We fingerprint this package's sources and drop the cache when
they change; an installed release never changes, so users always hit the cache.
"""
import glob
import hashlib
import os


def _guard_cache():
    here = os.path.dirname(__file__)
    digest = hashlib.sha1()
    for path in sorted(glob.glob(os.path.join(here, "*.py"))):
        with open(path, "rb") as f:
            digest.update(f.read())
    cache_dir = os.path.join(here, "__pycache__")
    stamp = os.path.join(cache_dir, "tapegrad-kernels.sha1")
    try:
        with open(stamp) as f:
            if f.read() == digest.hexdigest():
                return
    except OSError:
        pass
    try:
        os.makedirs(cache_dir, exist_ok=True)
        for path in glob.glob(os.path.join(cache_dir, "*.nb[ic]")):
            os.remove(path)
        with open(stamp, "w") as f:
            f.write(digest.hexdigest())
    except OSError:
        pass  # read-only install: numba falls back to its own cache directory


_guard_cache()
