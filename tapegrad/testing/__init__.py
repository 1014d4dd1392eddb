"""tapegrad.testing: gradient checking and hypothesis-based property testing of tapegrad operations.

    from tapegrad.testing import given_op, tensors, floats_avoiding
    test_log = given_op(tg.log, tensors(elements=floats_avoiding((0.0,), min_value=0.0)))
"""
from .gradcheck import GradcheckError, GradcheckWarning, gradcheck
from .property import check_op, given_op
from .strategies import (arrays, broadcastable_shapes, floats_avoiding, mutually_broadcastable_shapes, positive,
                         shapes, tensors, values)

__all__ = ["gradcheck", "GradcheckError", "GradcheckWarning", "check_op", "given_op", "shapes",
           "broadcastable_shapes", "mutually_broadcastable_shapes", "floats_avoiding", "values", "positive",
           "tensors", "arrays"]
