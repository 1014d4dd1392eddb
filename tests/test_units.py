"""The family units (tapegrad/_kernels/units): generated modules kept current, one unit per opcode and direction,
a program compiling only the units it uses, numba's disk cache shared by concurrent processes and reused by the
next one, a read-only install, and caches left by other versions (a recompile, never a stale kernel).

The process tests run small programs in fresh processes on an empty NUMBA_CACHE_DIR: their cost is numba
compiling the eager sweep and two small units, a few seconds each.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tapegrad as tg
from tapegrad._kernels import opcodes as op
from tapegrad._kernels import units

REPO = os.path.dirname(os.path.dirname(os.path.abspath(tg.__file__)))

# a sum (the sum unit) and 0-d arithmetic (inline in the sweep)
PROGRAM = textwrap.dedent("""
    import tapegrad as tg
    from tapegrad._kernels import units
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    s = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    (x.sum() * s * s).backward()
    print("grad", x.grad.tolist(), s.grad.item())
    print("file", tg.__file__)
    print("units", sorted(units.loaded()))
""")
EXPECTED_GRADS = "grad [2.25, 2.25, 2.25] 18.0"
DOUBLED_GRADS = "grad [4.5, 4.5, 4.5] 18.0"      # after the edit below


def _run(code, cache_dir, path=REPO, env_extra=None):
    """Run `code` in a fresh Python importing tapegrad from `path`, numba caching in `cache_dir` (None: numba's
    own choice)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "PYTEST"))}
    env["PYTHONPATH"] = path
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    env.update(env_extra or {})
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900,
                          cwd=path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _cache_files(cache_dir):
    return [name for _, _, files in os.walk(cache_dir) for name in files if name.endswith((".nbi", ".nbc"))]


def test_unit_modules_are_current():
    """They are generated from BACKWARD_UNITS / FORWARD_UNITS: `python -m tapegrad._kernels.units` rewrites them."""
    for direction, unit in units.all_units():
        with open(units.unit_path(direction, unit)) as f:
            assert f.read() == units.unit_source(direction, unit), f"{unit}_{direction}.py is stale"
    names = {f"{u}_{d}.py" for d, u in units.all_units()} | {"__init__.py", "__main__.py"}
    present = {f for f in os.listdir(os.path.dirname(units.__file__)) if f.endswith(".py")}
    assert present == names, present ^ names


def test_every_operation_has_its_units():
    """Each opcode is served by at most one unit per direction; every opcode with a backward kernel has a backward
    unit except the 0-d-only inline ones, and every replayable opcode a forward unit unless a program row runs it."""
    served = {"backward": {}, "forward": {}}
    for direction, unit in units.all_units():
        table = units.BACKWARD_UNITS if direction == "backward" else units.FORWARD_UNITS
        for o in table[unit][1]:
            assert o not in served[direction], f"opcode {o} in two {direction} units"
            served[direction][o] = unit
    for o in op.NAMES:
        fam = o >> 6
        has_backward = fam not in (op.SOURCE, op.GUARD, op.PYFUNC)
        assert (o in served["backward"]) == has_backward, (o, op.NAMES[o])
        has_forward = fam not in (op.SOURCE, op.UNARY, op.PYFUNC, op.CUSTOM)
        assert (o in served["forward"]) == has_forward, (o, op.NAMES[o])


def test_a_program_compiles_only_the_units_it_uses_and_the_next_process_compiles_nothing(tmp_path):
    """Two processes compile into one empty cache at once (numba writes its files atomically); a third loads
    everything from the cache, compiling nothing."""
    cache = str(tmp_path / "cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "PYTEST"))}
    env.update(PYTHONPATH=REPO, NUMBA_CACHE_DIR=cache)
    procs = [subprocess.Popen([sys.executable, "-c", PROGRAM], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
        assert EXPECTED_GRADS in out
        assert "units [('backward', 'sum')]" in out
    files = _cache_files(cache)
    assert any(f.startswith("sum_backward.") for f in files)
    # nothing of the families the program does not use: their kernel modules and units were never compiled
    for other in ("unary_", "binary_", "reduce_", "nn", "linalg", "matmul", "layout", "order", "ternary", "gather",
                  "replay", "program"):
        assert not any(f.startswith(other) for f in files), (other, sorted(files))

    third = _run(PROGRAM, cache, env_extra={"NUMBA_DEBUG_CACHE": "1"})
    assert EXPECTED_GRADS in third.stdout
    assert "data loaded" in third.stdout
    assert "data saved" not in third.stdout and "index saved" not in third.stdout, third.stdout[-2000:]


def _copy_package(dest):
    shutil.copytree(os.path.join(REPO, "tapegrad"), os.path.join(dest, "tapegrad"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_a_read_only_install_caches_elsewhere(tmp_path):
    """Where nothing can be written beside the package (a system install), numba caches in the user's cache
    directory, and the next process loads from there. The tests run as root, who writes anywhere, so the copy's
    __pycache__ folders are made impossible to create: files of that name stand in their place."""
    pkg = _copy_package(str(tmp_path / "site"))
    for root, dirs, _ in os.walk(os.path.join(pkg, "tapegrad")):
        open(os.path.join(root, "__pycache__"), "w").close()
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    for k in range(2):
        done = _run(PROGRAM, None, path=pkg, env_extra=dict(env, NUMBA_DEBUG_CACHE="1"))
        assert EXPECTED_GRADS in done.stdout
        assert f"file {os.path.join(pkg, 'tapegrad', '__init__.py')}" in done.stdout
        assert ("data saved" in done.stdout) == (k == 0), done.stdout[-2000:]
    assert any(f.startswith("sum_backward.") for f in _cache_files(str(home)))


def test_a_cache_left_by_another_version_is_recompiled_not_reused(tmp_path):
    """An edited kernel (another tapegrad) makes the next process recompile, whether numba caches beside the
    package (a pip install) or under NUMBA_CACHE_DIR (a CI cache); so does another numba version."""
    pkg = _copy_package(str(tmp_path / "site"))
    cache = str(tmp_path / "cache")
    for where in (None, cache):
        assert EXPECTED_GRADS in _run(PROGRAM, where, path=pkg).stdout
    assert any(f.startswith("sum_backward.") for f in _cache_files(pkg))
    assert any(f.startswith("sum_backward.") for f in _cache_files(cache))

    # another tapegrad: the sum unit's kernel (a file other than the unit's own) now doubles its gradient
    kernels = os.path.join(pkg, "tapegrad", "_kernels", "movement.py")
    with open(kernels) as f:
        source = f.read()
    doubled = source.replace("sum_all_backward(off[pa], off[i], size_at(ints, aux[pa]), const[i], adj,",
                             "sum_all_backward(off[pa], off[i], size_at(ints, aux[pa]), 2.0 * const[i], adj,")
    assert doubled != source
    with open(kernels, "w") as f:
        f.write(doubled)
    for where in (None, cache):
        assert DOUBLED_GRADS in _run(PROGRAM, where, path=pkg).stdout

    # another numba: its index files say which version wrote them, and numba ignores another version's
    fake = "import numba; numba.__version__ = '0.0.0-other'\n"
    third = _run(fake + PROGRAM, None, path=pkg, env_extra={"NUMBA_DEBUG_CACHE": "1"})
    assert DOUBLED_GRADS in third.stdout
    assert "data saved" in third.stdout, third.stdout[-2000:]


def test_a_unit_that_fails_in_a_replay_hands_over_to_eager_which_raises():
    """A cfunc cannot raise: a replay's unit that fails (a singular matrix) stops the replay, and the call is
    recorded again eagerly, which raises PyTorch's error."""
    f = tg.compile(lambda a, b: tg.linalg.solve(a, b))
    b = tg.ones(2, dtype=tg.float64)
    good = tg.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=tg.float64)
    for _ in range(2):
        assert np.allclose(f(good, b).numpy(), np.linalg.solve(good.numpy(), b.numpy()))
    singular = tg.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=tg.float64)
    with pytest.raises(tg.linalg.LinAlgError) as compiled:
        f(singular, b)
    with pytest.raises(tg.linalg.LinAlgError) as eager:
        tg.linalg.solve(singular, b)
    assert str(compiled.value) == str(eager.value)


def test_precompile_builds_the_chosen_units(capsys):
    from tapegrad.precompile import main
    assert main(["--families", "sum", "--no-loops"]) == 0
    assert ("backward", "sum") in units.loaded()
    err = capsys.readouterr().err
    assert "sum backward" in err and "total" in err
    with pytest.raises(SystemExit):
        main(["--families", "no_such_family"])
