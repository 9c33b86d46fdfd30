"""Progress bars for long work in notebooks and scripts: tqdm when it is installed, else one line of text
on stderr (`vp.sweep`, `vp.Client.run`)."""
from __future__ import annotations

import sys
import time
from typing import Any


class NoBar:
    """A progress bar that shows nothing."""

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class TextBar:
    """A one-line text progress report on stderr, at most twice a second (when tqdm is not installed)."""

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self.n, self.started, self.shown = 0, time.monotonic(), -1.0
        self._show(force=True)

    def update(self, n: int) -> None:
        self.n += n
        self._show(force=self.n >= self.total)

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.shown < 0.5:
            return
        self.shown = now
        sys.stderr.write(f"\r{self.label}: {self.n}/{self.total} cases, {now - self.started:.1f} s")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def progress_bar(total: int, label: str, enabled: bool = True) -> Any:
    """A bar over `total` cases with `update(n)` (n more done) and `close()`."""
    if not enabled:
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return TextBar(total, label)
    return tqdm(total=total, desc=label, unit="case")
