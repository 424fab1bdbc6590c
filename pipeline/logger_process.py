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
import fcntl
import multiprocessing
import os
import select
import signal
import sys
import threading
from multiprocessing.connection import Connection

# The end of a study's trials, from the job; and the logging process's answer once they are
# all logged.
END = "end"
# Bytes of trials in flight at most (Linux's limit for a pipe without privileges): a
# logging process that falls that far behind holds up the search, rather than the backlog
# growing in memory.
PIPE_BYTES = 1 << 20


class LoggerGone(Exception):
    """The logging process has ended (killed, or failed)."""


class LoggerProcess:
    """A forked process (a thread where there is no fork) that logs trials as child runs.

    ``send`` takes ``("study", StudyLog)``, then the study's ``TrialResult`` s, then ``END``;
    ``receive`` gives ``(kind, seconds, error)``: kind ``"trial"`` per trial, ``END`` once a
    study's trials are logged, ``"error"`` if the process fails outside a trial. Messages go
    through pipes, each written by the sending thread itself: ``multiprocessing.Queue``'s
    feeder thread cost the search ~14 thread switches a trial.
    """

    def __init__(self, *, fork: bool | None = None):
        fork = sys.platform == "linux" if fork is None else fork
        self.forked = fork
        self.used = False  # set once a study is sent
        self.broken = False  # a message was cut short: the process cannot read past it
        inbox, self._inbox = multiprocessing.Pipe(duplex=False)
        self._outbox, outbox = multiprocessing.Pipe(duplex=False)
        # Both ways: the job blocks on a full inbox only while the answers to what the pipe
        # holds fit in the outbox, so the two never wait on each other.
        _widen(inbox)
        _widen(outbox)
        if fork:
            context = multiprocessing.get_context("fork")
            self._worker = context.Process(
                target=_main,
                args=(inbox, outbox, os.getpid(), (self._inbox, self._outbox)),
                name="trial-logger",
                daemon=True,
            )
            self._worker.start()
            # The child's ends are the child's: closed here, so that either side sees the
            # other's end (EOF, a broken pipe) when it goes.
            inbox.close()
            outbox.close()
        else:
            self._worker = threading.Thread(
                target=_main, args=(inbox, outbox, None, ()), name="trial-logger", daemon=True
            )
            self._worker.start()

    def alive(self) -> bool:
        return self._worker.is_alive()

    def send(self, item: object) -> None:
        """Hand ``item`` over; waits while the pipe is full. Raises ``LoggerGone``."""
        if self.broken:
            raise LoggerGone
        try:
            self._inbox.send(item)
        except OSError:  # a broken pipe: the process has ended
            raise LoggerGone from None
        except BaseException:
            # Interrupted mid-message (a second Ctrl-C while the pipe was full): the rest of
            # the pipe can no longer be read, so the process goes; its trials are logged again
            # by the next run (tune._unlogged).
            self.broken = True
            self.kill()
            raise

    def receive(self, timeout: float = 0.0) -> tuple | None:
        """The next message, waiting up to ``timeout`` seconds; None if there is none yet.
        Raises ``LoggerGone`` once the process has ended and every message has been read."""
        try:
            if not self._outbox.poll(timeout):
                return None
            return self._outbox.recv()
        except (EOFError, OSError):
            raise LoggerGone from None

    def kill(self) -> None:
        """End the process at once (SIGKILL). A thread cannot be killed: it is left to end
        with the program (it is a daemon)."""
        if self.forked:
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
        elif self.alive():
            # Only if the stop marker fits now: a process that stopped reading is ended below.
            if select.select([], [self._inbox], [], timeout)[1]:
                with contextlib.suppress(LoggerGone):
                    self.send(None)
            self._worker.join(timeout)
            if self.forked and self._worker.is_alive():
                self._worker.terminate()
                self._worker.join()
        self._inbox.close()
        self._outbox.close()

    def __enter__(self) -> LoggerProcess:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


def _widen(end: Connection) -> None:
    """Give the pipe behind ``end`` room for several trials (Linux; elsewhere the default)."""
    with_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if with_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(end.fileno(), with_size, PIPE_BYTES)


def _main(
    inbox: Connection,
    outbox: Connection,
    parent_pid: int | None,
    theirs: tuple[Connection, ...],
) -> None:
    if parent_pid is not None:
        for end in theirs:  # the job's ends of the pipes
            end.close()
        # A forked process: Ctrl-C reaches the whole process group; the job's process handles
        # it and then stops this one. SIGTERM gets its default back (not the job's handler).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        from pipeline import tracking  # MLflow's import: here, in parallel with the job's work

        tracking.serve(inbox, outbox, parent_pid)
    except (EOFError, BrokenPipeError):
        pass  # the job's process is gone
    except BaseException as exc:  # reported to the job's process, which raises it
        with contextlib.suppress(OSError):
            outbox.send(("error", 0.0, f"{type(exc).__name__}: {exc}"))
