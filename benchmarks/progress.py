"""A dependency-free text progress bar on stderr."""
import sys
import time


class Progress:
    """Redraws one line on a terminal; otherwise (CI logs) prints a line per new label stem."""

    def __init__(self, total: int, width: int = 30, stream=sys.stderr):
        self.total = max(total, 1)
        self.done = 0
        self.width = width
        self.stream = stream
        self.tty = stream.isatty()
        self.start = time.perf_counter()
        self.label = None

    def advance(self, label: str, steps: int = 1) -> None:
        """Record `steps` units of work done on `label`."""
        self.done = min(self.done + steps, self.total)
        if self.tty:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            line = (f"[{bar}] {100 * self.done // self.total:3d}% "
                    f"{time.perf_counter() - self.start:5.1f}s  {label}")
            self.stream.write("\r\033[K" + line[:120])
        elif label.split(":")[0] != self.label:
            self.stream.write(f"[{100 * self.done // self.total:3d}%] {label.split(':')[0]}\n")
        self.label = label.split(":")[0]
        self.stream.flush()

    def close(self) -> None:
        """Finish the line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
