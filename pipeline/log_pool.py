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


def start() -> ProcessPoolExecutor:
    """The workers, started now if they are not running yet."""
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=WORKERS,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
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


def _start_worker(job_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with(job_pid)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    from pipeline import trial_log

    trial_log.warm_up()


def _exit_with(job_pid: int) -> None:
    """End this worker when the job's process is gone (kill -9): nothing else would."""

    def watch() -> None:
        while os.getppid() == job_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="job-watch", daemon=True).start()
