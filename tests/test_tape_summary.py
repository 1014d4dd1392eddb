"""tapegrad.autograd.tape_summary: what the current thread's tape holds and what keeps its segments alive."""
import io
import threading

import tapegrad as tg
from tapegrad.autograd import tape_summary


def _fresh_thread(fn):
    """Run fn on a new thread, whose tape starts empty; return what it returned."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_counts_records_by_grad_fn_name_and_bytes():
    def program():
        x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = (x * x).exp() * 2
        s = tape_summary(file=io.StringIO())
        return s, y
    s, _ = _fresh_thread(program)
    assert s.records == 4
    assert s.operations == {"leaf (AccumulateGrad)": 1, "MulBackward0": 2, "ExpBackward0": 1}
    assert s.value_bytes[0] == 4 * 3 * 8       # four records of three float64 values
    assert s.record_bytes[0] > 0 and s.int_bytes[0] > 0


def test_segments_say_what_holds_them():
    def program():
        x = tg.tensor([1.0, 2.0], requires_grad=True)
        kept = x.exp()                 # still alive after the backward below
        kept.sum().backward()
        y = (x * 3).sum()
        return tape_summary(file=io.StringIO()), kept, y
    s, kept, y = _fresh_thread(program)
    assert len(s.segments) == 2
    first, second = s.segments
    assert kept in first.tensors and not first.garbage
    assert y in second.tensors and second.holders() == "held by 1 tensor (() SumBackward0)"
    text = str(s)
    assert "records by operation:" in text and "SumBackward0" in text and "segments (2;" in text


def test_prints_the_table_and_returns_it(capsys):
    x = tg.tensor([1.0], requires_grad=True)
    y = x * 2
    s = tape_summary()
    assert capsys.readouterr().out == str(s) + "\n"
    assert repr(s).startswith("<TapeSummary: ")
    del y
