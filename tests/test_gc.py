"""tapegrad leaves Python's cyclic garbage collector alone: nothing at import, nothing at the first backward.

Each scenario runs in a fresh interpreter, because this test process imported tapegrad long ago.
"""
import os
import subprocess
import sys
import textwrap

import tapegrad

# the interpreter under test imports the same tapegrad as this process
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tapegrad.__file__)))

CYCLE = """
import gc, weakref

class Node:
    def __init__(self):
        self.self_ref = self                 # a reference cycle: only the cyclic collector can free it
        self.payload = bytearray(1_000_000)
"""

BACKWARD = """
x = tg.tensor([1.0, 2.0], requires_grad=True)
(x * x).sum().backward()
s = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
(s * s * (1 - s)).backward()
"""


def _run(code):
    """Run `code` in a fresh interpreter and return what it printed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_cycle_created_before_import_is_collected():
    out = _run(CYCLE + """
n = Node()
r = weakref.ref(n)
import tapegrad as tg
""" + BACKWARD + """
del n
gc.collect()
print(r() is None)
""")
    assert out == "True"


def test_cycle_created_between_import_and_first_backward_is_collected():
    out = _run(CYCLE + """
import tapegrad as tg
n = Node()
r = weakref.ref(n)
""" + BACKWARD + """
del n
gc.collect()
print(r() is None)
""")
    assert out == "True"


def test_import_and_backward_leave_collector_settings_unchanged():
    out = _run("""
import gc
gc.set_threshold(500, 7, 9)
before = (gc.isenabled(), gc.get_threshold())
import tapegrad as tg
""" + BACKWARD + """
print(gc.get_freeze_count(), (gc.isenabled(), gc.get_threshold()) == before)
""")
    assert out == "0 True"


def test_freeze_startup_objects_is_an_explicit_call():
    out = _run("""
import gc
import tapegrad as tg
""" + BACKWARD + """
unfrozen = gc.get_freeze_count()
tg.utils.freeze_startup_objects()
print(unfrozen, gc.get_freeze_count() > 0)
gc.unfreeze()
""")
    assert out == "0 True"
