"""Running a test on a fresh thread, hence on a fresh tape (tapes are per thread)."""
import functools
import threading


def on_own_tape(fn):
    """Run the test on a new thread, so its graphs live on that thread's tape and vanish with it, and so tests of
    the tape's memory see a tape untouched by whatever ran before them in this process (the tape adapts its
    compaction thresholds to what it has held)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        outcome = {}

        def target():
            try:
                fn(*args, **kwargs)
            except BaseException as err:   # re-raised on the test's thread
                outcome["error"] = err
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
    return wrapper
