"""Op specs of the elementwise family (see tapegrad/testing/op_db.py): one _op(...) line per operation."""
from ..op_db import _op, _t, _elementwise, _unary, DOMAINS  # noqa: F401
