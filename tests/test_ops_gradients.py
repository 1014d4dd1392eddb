"""Every differentiable tapegrad operation, gradchecked on generated inputs (one parametrized property test).

The operations and their argument strategies live in tapegrad.testing.op_db.OPS; add an op there.
"""
import pytest
from hypothesis import given

import tapegrad as tg
from tapegrad.testing import check_op
from tapegrad.testing.op_db import OPS


@pytest.mark.parametrize("spec", OPS, ids=lambda s: s.name)
def test_gradients(spec):
    """Analytical gradients match central finite differences."""
    op = spec.bind(tg)

    @given(args=spec.args)
    def prop(args):
        check_op(op, *args, **spec.gradcheck_kwargs)
    prop()
