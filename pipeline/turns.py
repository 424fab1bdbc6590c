"""Who logs and who reports a study that several processes work on at once.

Every pipeline process running a study's trials holds the study's *logging* lock shared
until its trial logger has written all its child runs. The process that reports the study
first takes its *report* lock (held until the registry has decided), then the logging lock
exclusively: once it has that, every live pipeline process has logged its trials, so a
complete trial with no child run was run by a process that died or by another Optuna
client, and is logged once, by the reporter. A process that finds the report lock taken
waits for it and then finds the study reported.

The locks are per study and, like the storage's other locks, public mechanisms of the
systems underneath: POSIX record locks on one byte per study and lock in a file beside a
SQLite database (``optuna.db.study.lock``), or PostgreSQL advisory locks keyed by lock and
study. The kernel or the server releases them when their process dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy

from pipeline import interrupt
from pipeline.storage import storage_lock

log = logging.getLogger(__name__)

LOGGING, REPORT = 0, 1  # the two locks of a study (PostgreSQL: their first int4 key)
_NAMES = {LOGGING: "logging its trials", REPORT: "reporting the study"}
_PG_KEY = 0x72670000  # the first int4 key of a study lock: this prefix plus the lock


class StudyLocks:
    """The logging and report locks of one study in one storage."""

    def __init__(self, storage_url: str, study: str):
        self.storage = storage_lock(storage_url)
        # Any fixed 31-bit number per study; two studies sharing one only wait for each other.
        self.key = zlib.crc32(study.encode()) & 0x3FFFFFFF
        self.fd: int | None = None

    @contextmanager
    def hold(self, lock: int, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
        """Hold ``lock`` of the study for the block (shared or exclusive); yields whether it
        is held: with ``wait=False`` the block runs without it when another process has it."""
        take, release = self._postgresql(lock, shared) or self._file(lock, shared)
        waited = False
        while not take():
            if not wait:
                yield False
                return
            if not waited:
                log.info("waiting for another process %s", _NAMES[lock])
                waited = True
            interrupt.check()
            time.sleep(0.05)
        try:
            yield True
        finally:
            release()

    def _postgresql(self, lock: int, shared: bool):
        if self.storage.backend != "postgresql":
            return None
        mode = "_shared" if shared else ""
        keys = {"a": _PG_KEY + lock, "b": self.key}

        def take() -> bool:
            sql = f"SELECT pg_try_advisory_lock{mode}(:a, :b)"
            return bool(self.storage.connection().execute(sqlalchemy.text(sql), keys).scalar())

        def release() -> None:
            sql = f"SELECT pg_advisory_unlock{mode}(:a, :b)"
            self.storage.connection().execute(sqlalchemy.text(sql), keys)

        return take, release

    def _file(self, lock: int, shared: bool):
        if self.storage.path is None:  # another database: no cross-process lock
            return (lambda: True), (lambda: None)
        if self.fd is None:
            # Opened once and never closed: closing any descriptor of a file drops all of
            # the process's record locks on it.
            self.fd = _open_once(f"{self.storage.path}.study.lock")
        offset = 2 * self.key + lock
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX

        def take() -> bool:
            try:
                fcntl.lockf(self.fd, mode | fcntl.LOCK_NB, 1, offset)
                return True
            except (BlockingIOError, PermissionError):
                return False

        def release() -> None:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, offset)

        return take, release


_files: dict[str, int] = {}


def _open_once(path: str) -> int:
    if path not in _files:
        _files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    return _files[path]


_studies: dict[tuple[str, str], StudyLocks] = {}


def study_locks(storage_url: str, study: str) -> StudyLocks:
    """The process's locks object of ``study`` in the storage at ``storage_url``."""
    if (storage_url, study) not in _studies:
        _studies[storage_url, study] = StudyLocks(storage_url, study)
    return _studies[storage_url, study]
