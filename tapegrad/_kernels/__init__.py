"""numba code only: the loops (sweep.py, replay.py), the family kernels and their units (frame.py, units/).

numba's on-disk cache is keyed on each function's own source file, so a cached unit or loop would keep calling
the old version of a kernel edited in another file. We fingerprint this package's sources and drop our cached
files where numba keeps them (beside the sources, under NUMBA_CACHE_DIR, or in the user's cache directory) when
they change; an installed release never changes, so users always hit the cache.
"""
import glob
import hashlib
import os
import tempfile


def _cache_dir(source_dir):
    """The folder where numba caches the functions of the files in source_dir: the first writable one of
    NUMBA_CACHE_DIR's, the package's own and the user's cache directory's (numba.core.caching's locators, in its
    order), or None."""
    candidates = [os.path.join(source_dir, "__pycache__")]
    try:
        from numba.core import config
        from numba.core.caching import _CacheLocator
        from numba.misc.appdirs import AppDirs
        subpath = _CacheLocator.get_suitable_cache_subpath(os.path.join(source_dir, "__init__.py"))
        if config.CACHE_DIR:
            candidates.insert(0, os.path.join(config.CACHE_DIR, subpath))
        candidates.append(os.path.join(AppDirs(appname="numba", appauthor=False).user_cache_dir, subpath))
    except (ImportError, AttributeError):
        pass    # another numba's layout: the package's own folder is still guarded
    for path in candidates:
        try:
            os.makedirs(path, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
            return path
        except OSError:
            continue
    return None


def _guard_cache():
    here = os.path.dirname(__file__)
    sources = [here, os.path.join(here, "units")]
    digest = hashlib.sha1()
    for path in sorted(p for d in sources for p in glob.glob(os.path.join(d, "*.py"))):
        with open(path, "rb") as f:
            digest.update(f.read())
    for cache_dir in {_cache_dir(d) for d in sources} - {None}:
        stamp = os.path.join(cache_dir, "tapegrad-kernels.sha1")
        try:
            with open(stamp) as f:
                if f.read() == digest.hexdigest():
                    continue
        except OSError:
            pass
        try:
            for path in glob.glob(os.path.join(cache_dir, "*.nb[ic]")):
                os.remove(path)
            with open(stamp, "w") as f:
                f.write(digest.hexdigest())
        except OSError:
            pass    # not writable: numba will not cache there either


_guard_cache()
