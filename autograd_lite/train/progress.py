"""What ``fit`` prints: a line per few epochs (``Log``) and a progress bar on a terminal."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass


@dataclass
class Log:
    """How ``fit`` reports: a line ``epoch  loss  metrics`` every ``log_every`` epochs (None:
    about ten lines per run) to ``stream`` (None: stderr), unless ``verbose=False``, and a
    ``ProgressBar`` per ``progress`` ("auto": long runs on a terminal only; True; False)."""

    log_every: int = None
    stream: object = None
    progress: object = "auto"
    verbose: bool = True

    def __post_init__(self):
        if self.log_every is not None and (not isinstance(self.log_every, int) or self.log_every < 1):
            raise ValueError(f"fit: log_every must be a whole number >= 1 or None, got {self.log_every!r}")
        self.stream = sys.stderr if self.stream is None else self.stream

    def epoch(self, epoch, first, last, loss, values, bar, force=False):
        """Write epoch's line if it is one to write (the first, every log_every-th, the last)."""
        every = self.log_every or max(1, (last - first + 1) // 10)
        if self.verbose and (epoch % every == 0 or epoch in (first, last) or force):
            bar.clear()
            extras = "".join(f"  {key} {value:.4f}" for key, value in values.items())
            self.stream.write(f"epoch {epoch:>{len(str(last))}}/{last}  loss {loss:.4f}{extras}\n")
            self.stream.flush()

    def line(self, text):
        if self.verbose:
            self.stream.write(text + "\n")


class ProgressBar:
    """A one-line bar on a stream, redrawn in place with ``\\r``; no dependency.

    ``enabled="auto"`` draws only on a terminal (``stream.isatty()``) and only once the run
    has lasted ``delay`` seconds, so short runs and logs stay clean; ``True`` always draws
    (from the first update), ``False`` never.
    """

    def __init__(self, total, stream=None, enabled="auto", width=30, delay=1.0, interval=0.1):
        self.total = max(int(total), 1)
        self.stream = sys.stderr if stream is None else stream
        if enabled == "auto":
            isatty = getattr(self.stream, "isatty", None)
            self.enabled = bool(isatty and isatty())
            self.delay = delay
        else:
            self.enabled = bool(enabled)
            self.delay = 0.0
        self.width = width
        self.interval = interval
        self.started = time.monotonic()
        self.last_draw = None
        self.shown = False

    def update(self, done, text=""):
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.delay:
            return
        if self.last_draw is not None and now - self.last_draw < self.interval and done < self.total:
            return
        self.last_draw = now
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {100 * done / self.total:5.1f}% {text}")
        self.stream.flush()
        self.shown = True

    def clear(self):
        """Erase the bar (before a normal line is printed, and at the end)."""
        if self.shown:
            self.stream.write("\r" + " " * (self.width + 60) + "\r")
            self.stream.flush()
            self.shown = False


