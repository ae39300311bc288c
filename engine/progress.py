"""Progress on a terminal: one status line at the bottom of stderr naming the client,
night and stage that runs, with the seconds it has taken so far; log lines print above
it. Nothing at all when stderr is not a terminal, or when logs are JSON lines.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

CLEAR = "\r\x1b[2K"


class Status:
    def __init__(self) -> None:
        self.enabled = False
        self.text = ""
        self.started = 0.0
        self.lock = threading.Lock()

    def log(self, message: str) -> None:
        """A log line, printed above the status line."""
        with self.lock:
            if self.text:
                sys.stderr.write(CLEAR)
            sys.stderr.write(message)
            if self.text:
                self._draw()
            sys.stderr.flush()

    def _draw(self) -> None:
        sys.stderr.write(f"{CLEAR}{self.text} {time.monotonic() - self.started:.1f}s")
        sys.stderr.flush()

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """Show `text` and a running clock while the block runs; clear it after."""
        if not self.enabled:
            yield
            return
        with self.lock:
            self.text, self.started = f"▸ {text}", time.monotonic()
            self._draw()
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(0.25):
                with self.lock:
                    if self.text:
                        self._draw()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
            with self.lock:
                sys.stderr.write(CLEAR)
                sys.stderr.flush()
                self.text = ""


STATUS = Status()
step = STATUS.step
