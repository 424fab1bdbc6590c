"""Ctrl-C and SIGTERM, turned into an exception at a safe point.

The first signal only sets a flag; the search raises ``Interrupted`` at its next check
(between folds, between trials), so the trial in flight is marked failed and every run
is closed. A second signal raises at once, for a user who will not wait.
"""

from __future__ import annotations

import signal

_requested: int | None = None


class Interrupted(KeyboardInterrupt):
    """Raised at a safe point after SIGINT or SIGTERM; ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


def _handle(signum: int, frame) -> None:
    global _requested
    if _requested is not None:
        raise Interrupted(signum)
    _requested = signum


def install() -> None:
    """Route SIGINT and SIGTERM to the flag (main thread only)."""
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


def check() -> None:
    """Raise ``Interrupted`` if a signal has arrived since ``install``."""
    if _requested is not None:
        raise Interrupted(_requested)
