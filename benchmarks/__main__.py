"""Entry point for `python -m benchmarks`."""
import sys

from benchmarks.cli import parse_args
from benchmarks.threads import set_thread_env

# Parse options and set the thread env vars before anything imports numpy,
# torch or numba: their thread pools read these variables only at import time.
options = parse_args(sys.argv[1:])
if options.compare:
    from benchmarks.compare import compare_runs

    print(compare_runs(*options.compare))
    sys.exit(0)
if options.threads is not None:
    if "numpy" in sys.modules:
        print("warning: numpy was imported before --threads could take effect", file=sys.stderr)
    set_thread_env(options.threads)

from benchmarks.runner import main  # noqa: E402  (heavy imports happen from here on)

sys.exit(main(options))
