"""Thread-count control and reporting for BLAS, OpenMP, numba and torch."""
import os

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def set_thread_env(n: int) -> None:
    """Set every thread env var to n; only effective before the libraries are imported."""
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    # XLA (jax) has no thread-count variable; its CPU client reads this flag at start-up: one thread, or all cores.
    # (Every entry must be a --flag: XLA takes a first word without "--" for a file of flags and aborts.)
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith(("--xla_cpu_multi_thread_eigen", "intra_op_parallelism_threads"))]
    if n == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
    if flags:
        os.environ["XLA_FLAGS"] = " ".join(flags)
    else:
        os.environ.pop("XLA_FLAGS", None)


def _numba():
    try:
        import numba
    except Exception:
        return None
    return numba


def apply_threads(n: int | None, libs: dict) -> None:
    """Pin the runtime thread counts of numba and the loaded libraries (by module name) to n."""
    if n is None:
        return
    numba = _numba()
    if numba is not None:
        numba.set_num_threads(n)
    for lib in libs.values():
        setter = getattr(lib, "set_num_threads", None)
        if callable(setter):
            setter(n)
        interop = getattr(lib, "set_num_interop_threads", None)
        if callable(interop):
            try:
                interop(n)
            except RuntimeError:  # torch allows it only before any inter-op work has run
                pass


def thread_report(libs: dict) -> dict:
    """Describe the thread settings in force: env vars, numba, and each loaded library."""
    report = {var: os.environ.get(var, "unset") for var in (*THREAD_ENV_VARS, "XLA_FLAGS")}
    report["os.cpu_count"] = os.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        report["cpus usable (affinity)"] = len(os.sched_getaffinity(0))
    numba = _numba()
    if numba is not None:
        report["numba threads"] = numba.get_num_threads()
    for name, lib in libs.items():
        getter = getattr(lib, "get_num_threads", None)
        if callable(getter):
            report[f"{name} threads"] = getter()
        interop = getattr(lib, "get_num_interop_threads", None)
        if callable(interop):
            report[f"{name} interop threads"] = interop()
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        report["blas pools"] = "threadpoolctl not installed; see the env vars"
    else:
        for pool in threadpool_info():
            report[f"{pool.get('internal_api')} ({pool.get('user_api')})"] = pool.get("num_threads")
    return report
