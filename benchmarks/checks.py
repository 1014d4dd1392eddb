"""Correctness check of one system's (value, arrays) against the reference system's."""
import numpy as np

DEFAULT_RTOL = 1e-9
# Entries near zero are compared against the array's scale, not their own magnitude,
# since summation order legitimately differs between BLAS and hand-written kernels.
ATOL_OF_SCALE = 1e-12


def compare(got, want, rtol: float = DEFAULT_RTOL) -> str | None:
    """None if got matches want ((value, {name: array}) pairs), else why not."""
    (value, arrays), (ref_value, ref_arrays) = got, want
    problems = []
    for name, a, b in [("value", value, ref_value)] + [
        (k, arrays.get(k), ref_arrays[k]) for k in ref_arrays
    ]:
        why = _mismatch(a, b, rtol)
        if why:
            problems.append(f"{name}: {why}")
    extra = sorted(set(arrays) - set(ref_arrays))
    if extra:
        problems.append(f"unexpected entries {extra}")
    if len(problems) > 3:
        problems[3:] = [f"and {len(problems) - 3} more"]
    return "; ".join(problems) or None


def _mismatch(a, b, rtol: float) -> str | None:
    if a is None:
        return "missing"
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return f"shape {a.shape} != reference {b.shape}"
    if not np.all(np.isfinite(a)):
        return "contains non-finite values"
    if not np.all(np.isfinite(b)):
        return "reference contains non-finite values"
    if a.size == 0:
        return None
    err = np.abs(a - b)
    allowed = rtol * np.abs(b) + ATOL_OF_SCALE * np.max(np.abs(b))
    if np.all(err <= allowed):
        return None
    i = tuple(int(k) for k in np.unravel_index(np.argmax(err - allowed), err.shape))
    return (f"got {a[i]:.17g}, reference {b[i]:.17g}{f' at {i}' if i else ''} "
            f"(|diff| {err[i]:.3g} > allowed {allowed[i]:.3g})")
