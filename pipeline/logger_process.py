"""The process that logs trials to MLflow, started before the job loads its data.

Forking a process that already holds the data slows the search that follows: every page
it writes afterwards is first copied, one fault at a time (on D2 a child that did nothing
added 0.14 s, a third of the study). Forked at the start of the job, while the process is
small, it costs nothing. It then imports MLflow itself, in parallel with the job, and logs
the trials of each study the job runs (``tracking.TrialLogger`` talks to it). It ends with
``close()``, or by itself when the job's process is gone.

This module imports nothing heavy, so that a job can start the process before its own
imports and data checks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import threading

# The end of a study's trials, from the job; and the logging process's answer once they are
# all logged.
END = "end"
# Trials waiting to be logged at most: a logging process that falls that far behind holds up
# the search rather than its memory growing.
BACKLOG = 256


class LoggerProcess:
    """A forked process (a thread where there is no fork) that logs trials as child runs.

    ``inbox`` takes ``("study", StudyLog)``, then the study's ``TrialResult`` s, then ``END``;
    ``outbox`` answers ``(kind, seconds, error)``: kind ``"trial"`` per trial, ``END`` once a
    study's trials are logged, ``"error"`` if the process fails outside a trial. ``None`` in
    the inbox stops the process.
    """

    def __init__(self, *, fork: bool | None = None):
        fork = sys.platform == "linux" if fork is None else fork
        self.forked = fork
        self.used = False  # set once a study is sent
        if fork:
            context = multiprocessing.get_context("fork")
            self.inbox = context.Queue(maxsize=BACKLOG)
            self.outbox = context.Queue()
            self._worker = context.Process(
                target=_main,
                args=(self.inbox, self.outbox, os.getpid()),
                name="trial-logger",
                daemon=True,
            )
        else:
            self.inbox = queue.Queue(maxsize=BACKLOG)
            self.outbox = queue.Queue()
            self._worker = threading.Thread(
                target=_main, args=(self.inbox, self.outbox, None), name="trial-logger", daemon=True
            )
        self._worker.start()

    def alive(self) -> bool:
        return self._worker.is_alive()

    def kill(self) -> None:
        """End the process at once, as the OOM killer would (for tests)."""
        self._worker.kill()
        self._worker.join()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the process once it has logged what it was given.

        One that was never given a study (the job stopped before its search: a user error, a
        finished study) is killed at once: it may still be importing MLflow, and it has
        nothing to write.
        """
        if self.forked and not self.used:
            self.kill()
            return
        if self.alive():
            with contextlib.suppress(queue.Full):
                self.inbox.put(None, timeout=timeout)
            self._worker.join(timeout)
        if self.forked and self._worker.is_alive():
            self._worker.terminate()
            self._worker.join()

    def __enter__(self) -> LoggerProcess:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


def _main(inbox, outbox, parent_pid: int | None) -> None:
    if parent_pid is not None:
        # A forked process: Ctrl-C reaches the whole process group; the job's process handles
        # it and then stops this one. SIGTERM gets its default back (not the job's handler).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        from pipeline import tracking  # MLflow's import: here, in parallel with the job's work

        tracking.serve(inbox, outbox, parent_pid)
    except BaseException as exc:  # reported to the job's process, which raises it
        outbox.put(("error", 0.0, f"{type(exc).__name__}: {exc}"))
