"""Hypothesis profiles: 'ci' (fixed, derandomized), 'dev' (default) and 'thorough'.

CI set in the environment selects 'ci', otherwise 'dev'; HYPOTHESIS_PROFILE overrides both.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True, print_blob=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
