"""Hypothesis profiles: 'ci' (fixed, derandomized; the default, so a plain `pytest` is the same run everywhere and
fits CI's time budget), 'dev' (hypothesis' random 100 examples) and 'thorough' (500). HYPOTHESIS_PROFILE picks one.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True, print_blob=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")

# Adjoint buffers are not zeroed between sweeps in normal use; under test, every sweep starts on adjoints filled
# with nan, so a gradient reading an adjoint no consumer wrote in its sweep fails loudly (autograd/engine.py).
from tapegrad.autograd import engine as _engine  # noqa: E402

_engine.POISON_ADJOINTS = True

# Every float64 add/sub/mul/div result of any size is computed into the tape under test (ops/elementwise.py), so
# in-place, view, reset and compaction tests all run over tensors whose data is their record's value.
from tapegrad.ops import elementwise as _elementwise  # noqa: E402

_elementwise.INTO_TAPE_MIN = 0
