"""no_grad, enable_grad, set_grad_enabled: per-thread grad mode, usable as context managers and decorators."""
import functools

from .._tape import _set_grad_enabled, is_grad_enabled


class _GradMode:
    mode = None

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _set_grad_enabled(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _set_grad_enabled(prev)
        return wrapper


class _BareDecorator(_GradMode):
    """Also usable as a bare decorator (@no_grad without parentheses), as in PyTorch."""

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        return self if orig_func is None else self(orig_func)

    def __init__(self, orig_func=None):
        pass


class no_grad(_BareDecorator):
    """Operations inside record nothing and their results do not require grad."""
    mode = False


class enable_grad(_BareDecorator):
    """Turn recording back on inside a no_grad region."""
    mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode; like PyTorch it takes effect on construction and is restored when a with-block exits."""

    def __init__(self, mode):
        self._prev = is_grad_enabled()
        self.mode = bool(mode)
        _set_grad_enabled(self.mode)

    def __enter__(self):
        return self

    def __call__(self, fn):
        _set_grad_enabled(self._prev)   # used as a decorator: only the decorated calls change the mode
        return super().__call__(fn)
