"""Compile tapegrad's numba code ahead of time, into numba's disk cache: `python -m tapegrad.precompile`.

For container images and CI caches: a process that finds everything in the cache starts computing gradients at
once, where a fresh one compiles each unit the first time a program uses it (seconds each, see the README).
`--families binary,nn` builds only those families' units (both directions; `--list` names them, and a unit's
name picks just that unit: `reduce` is the sums' and the other reductions' units, `sum` the first), `--no-loops` skips
the loops (the eager sweep, tg.compile's replay kernel and tg.vmap's parallel one). Where the cache goes is numba's
choice: beside the package when it is writable, else NUMBA_CACHE_DIR or the user's cache directory.
"""
import argparse
import sys
import time

from ._kernels import units


def _eager_sweep():
    import tapegrad as tg
    x = tg.tensor(2.0, dtype=tg.float64, requires_grad=True)
    (x * x).backward()


def _compiled_replay():
    import tapegrad as tg
    f = tg.compile(tg.value_and_grad(lambda x: (x * x).sum()))
    for _ in range(3):
        f(tg.ones(3, dtype=tg.float64))
    g = tg.compile(lambda x: x * x)
    for _ in range(2):
        g(tg.ones(3, dtype=tg.float64))
    return f


def _parallel_replay():
    import tapegrad as tg
    tg.vmap(_compiled_replay())(tg.ones((4, 3), dtype=tg.float64))


_FAMILY_UNITS = {"reduce": {"sum", "reduce"}}   # a family spread over several units; the others are one each
LOOPS = (("eager sweep", _eager_sweep), ("tg.compile replay", _compiled_replay), ("tg.vmap replay", _parallel_replay))


def _bar(done, total, width=24):
    filled = round(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


def precompile(unit_names=None, loops=True, out=sys.stderr):
    """Build the chosen units (all by default) and the loops; returns [(what, seconds)]."""
    chosen = [(d, u) for d, u in units.all_units() if unit_names is None or u in unit_names]
    jobs = [(f"{u} {d}", (lambda d=d, u=u: units.load_unit(d, u))) for d, u in chosen]
    if loops:
        jobs += [(f"loop: {name}", fn) for name, fn in LOOPS]
    times = []
    start = time.perf_counter()
    for k, (what, build) in enumerate(jobs):
        out.write(f"\r{_bar(k, len(jobs))} {k}/{len(jobs)} {what:<28}")
        out.flush()
        t = time.perf_counter()
        build()
        times.append((what, time.perf_counter() - t))
        out.write(f"\r{_bar(k + 1, len(jobs))} {k + 1}/{len(jobs)} {what:<28} {times[-1][1]:6.1f} s\n")
    out.write(f"total {time.perf_counter() - start:.1f} s\n")
    out.flush()
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tapegrad.precompile", description=__doc__.splitlines()[0])
    parser.add_argument("--families", "--units", dest="families",
                        help="comma-separated families or units (default: all; see --list)")
    parser.add_argument("--no-loops", action="store_true", help="skip the sweep and replay loops")
    parser.add_argument("--list", action="store_true", help="list the units")
    args = parser.parse_args(argv)
    names = sorted({u for _, u in units.all_units()})
    if args.list:
        for direction, unit in units.all_units():
            opcodes = (units.BACKWARD_UNITS if direction == "backward" else units.FORWARD_UNITS)[unit][1]
            print(f"{unit:10} {direction:9} {len(opcodes):3} operations")
        return 0
    chosen = None
    if args.families:
        asked = {u.strip() for u in args.families.split(",") if u.strip()}
        unknown = asked - set(names)
        if unknown:
            parser.error(f"unknown families {', '.join(sorted(unknown))}; they are {', '.join(names)}")
        chosen = set().union(*(_FAMILY_UNITS.get(u, {u}) for u in asked))
    precompile(chosen, loops=not args.no_loops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
