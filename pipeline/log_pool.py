"""The worker processes that log trials to MLflow, started early so their imports overlap
the job's own preparation.

Spawned (they share no state with the job), they ignore Ctrl-C (the job decides when
logging stops), use one BLAS thread, and exit when the job's process is gone (kill -9).
This module imports nothing heavy: the job starts the workers before it imports MLflow
itself, and each worker imports ``pipeline.trial_log`` (MLflow, skops) on start.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

# The search takes one core; the logging workers take what is left, two at most. On two
# cores one worker is faster end to end than two: each worker's start-up (importing MLflow,
# opening the store) costs seconds of the CPU the search and the report need
# (bench/end_to_end.py: D2 27 s with one, 34 s with two; the default job 17 s and 23 s).
WORKERS = max(1, min(2, len(os.sched_getaffinity(0)) - 1))

_pool: ProcessPoolExecutor | None = None
_quit = None  # a shared flag the workers poll: set, they exit at once (see discard)
_used = False  # a task was submitted: the workers may be logging


def start() -> ProcessPoolExecutor:
    """The workers, started now if they are not running yet."""
    global _pool, _quit
    if _pool is None:
        context = multiprocessing.get_context("spawn")
        # A bare shared byte, not an Event: setting it never waits on a worker (an Event's
        # set() blocks on a worker that died while waiting on it).
        _quit = context.RawValue("b", 0)
        _pool = ProcessPoolExecutor(
            max_workers=WORKERS,
            mp_context=context,
            initializer=_start_worker,
            initargs=(os.getpid(), _quit),
        )
        for _ in range(WORKERS):  # a pool spawns a worker per task it cannot hand out
            _pool.submit(time.sleep, 0.05)
    return _pool


def stop() -> None:
    """Stop taking work: queued tasks are cancelled; the one running finishes (the
    interpreter waits for it at exit)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def submit(fn, /, *args):
    """Run ``fn(*args)`` in a worker; its future."""
    global _used
    _used = True
    return start().submit(fn, *args)


def discard() -> None:
    """The job is ending. Workers that were never given a task (a finished study, a user
    error) exit now, even in their start-up, instead of the job's exit waiting for their
    imports; others finish the task they are running, as after ``stop``."""
    if _quit is not None and _pool is not None and not _used:
        _quit.value = 1
    stop()


def _start_worker(job_pid: int, quit_now) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with(job_pid, quit_now)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    from pipeline import trial_log

    trial_log.warm_up()


def _exit_with(job_pid: int, quit_now) -> None:
    """End this worker when the job's process is gone (kill -9): nothing else would; or
    when the job discards its workers."""

    def watch() -> None:
        while os.getppid() == job_pid and not quit_now.value:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="job-watch", daemon=True).start()
