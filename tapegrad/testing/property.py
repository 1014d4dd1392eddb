"""Turn an operation into a property test: check_op inside @given, or given_op to build the whole test."""
import functools
import re

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from .gradcheck import gradcheck, op_name

__all__ = ["check_op", "given_op"]

_GRADCHECK_KW = ("eps", "atol", "rtol", "nondet_tol")


def check_op(op, *inputs, name=None, **gradcheck_kwargs):
    """gradcheck `op` at `inputs` (tensors requiring grad are checked, other arguments passed through).

    Call it inside a @given test; a failure raises GradcheckError naming the op and the offending input.
    """
    name = name or op_name(op)
    note(f"op under test: {name}")
    return gradcheck(op, inputs, name=name, **gradcheck_kwargs)


def _identifier(name):
    return re.sub(r"\W+", "_", name).strip("_") or "op"


def given_op(op, *strategies, name=None, **kwargs):
    """A pytest test that gradchecks `op` on arguments drawn from `strategies` (one strategy per argument).

    Keyword arguments named like gradcheck's (eps, atol, rtol, nondet_tol) go to gradcheck, the others to
    hypothesis.settings (max_examples, ...). Assign the result to a `test_...` name, or use it as a decorator
    on an empty function to take that function's name and docstring:

        test_sin = given_op(tg.sin, tensors())
    """
    name = name or op_name(op)
    check_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _GRADCHECK_KW}
    health = list(kwargs.pop("suppress_health_check", ())) + [HealthCheck.too_slow, HealthCheck.data_too_large]
    kwargs.setdefault("deadline", None)   # the first call of an op may compile kernels

    def make(test_name, doc):
        @settings(suppress_health_check=health, **kwargs)
        @given(inputs=st.tuples(*strategies))
        def property_test(inputs):
            check_op(op, *inputs, name=name, **check_kwargs)
        property_test.__name__ = property_test.__qualname__ = test_name

        @functools.wraps(property_test, assigned=("__module__", "__name__", "__qualname__"))
        def test(*args):
            if len(args) == 1 and callable(args[0]):      # used as a decorator
                fn = args[0]
                return make(fn.__name__, fn.__doc__)
            return property_test()
        test.__doc__ = doc
        test.hypothesis_test = property_test
        test.op = op
        test.op_name = name
        return test

    return make(f"test_{_identifier(name)}_gradcheck", f"Property test: gradcheck of {name}.")
