"""What a long step is doing: a line as it starts, its time when it took a second or more,
and on a terminal a progress bar for steps that count their items."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("pipeline")

SLOW_S = 1.0  # a step this long reports its time


@contextmanager
def phase(what: str) -> Iterator[None]:
    """Say ``what`` is being done; when it is done, how long it took if that was long."""
    log.info("%s", what)
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    if took >= SLOW_S:
        log.info("%s: done in %.1f s", what, took)


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def bar(total: int, desc: str, unit: str, *, show: bool | None = None):
    """A tqdm bar on a terminal (``update``/``close``); elsewhere an object that does nothing."""
    if show is None:
        show = sys.stderr.isatty()
    if not show or total <= 0:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def plural(n: int, word: str) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
