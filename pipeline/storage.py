"""Optuna's study storage, and the cross-process locks the pipeline takes around it.

The storage is Optuna's own ``RDBStorage`` (SQLite on one machine, PostgreSQL shared by
workers) with Optuna's heartbeat and its retry of stale trials. The locks are ours, built
on the operating system (``flock``) or PostgreSQL (advisory locks): public mechanisms of
those systems, never Optuna's tables.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from pipeline import interrupt, sqlite
from pipeline.stores import unreachable

log = logging.getLogger(__name__)

# Advisory lock keys (any two fixed 64-bit numbers): one for creating the stores, the study
# and its parent run, one for asking for a trial within the budget.
CREATE_LOCK = 0x7265677475_01
TRIAL_LOCK = 0x7265677475_02
# On SQLite each is a file beside the database, one per lock whatever the number of
# studies: ``optuna.db.create.lock`` and ``optuna.db.ask.lock``. A study's own locks (who
# logs and who reports it) are in ``turns``.
LOCK_FILES = {CREATE_LOCK: "create", TRIAL_LOCK: "ask"}


def open_storage(
    url: str, *, heartbeat_interval: int, grace_period: int
) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``, with its heartbeat and one retry of a stale trial."""
    kwargs = {}
    path = sqlite.path_of(url)
    if path is not None:
        try:
            sqlite.wal(path)  # each commit of a trial would otherwise sync the whole file
        except sqlite3.Error as exc:
            raise unreachable("search.storage", url, exc) from None
        kwargs["engine_kwargs"] = {"creator": _sqlite_connector(path)}
    with warnings.catch_warnings():
        # The heartbeat is marked experimental; it is what fails the trial of a killed process,
        # and the callback queues that trial once more (linked to it by its system attrs).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=retry_stale_trial(),
                **kwargs,
            )
        except (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error, OSError) as exc:
            raise unreachable("search.storage", url, exc) from None


def retry_stale_trial() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """Optuna's callback that runs a trial whose process died once more."""
    return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)


def _sqlite_connector(path) -> Callable[[], sqlite3.Connection]:
    """SQLAlchemy's ``creator``: connections that wait up to a minute for a lock, and in WAL
    mode commit without a disk sync (a crash keeps the file consistent; a power cut may lose
    the last trials, which a resumed study runs again)."""

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=60, check_same_thread=False)
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    return connect


def shared_storage(url: str) -> bool:
    """Whether several machines can share this storage (a database server, not a file)."""
    return make_url(url).get_backend_name() not in ("sqlite",)


class StorageLock:
    """A lock shared by every process that uses one study storage.

    On PostgreSQL a session-level advisory lock, on SQLite a file lock beside the database
    file: either way the server or the kernel releases it when its process dies (kill -9).
    Other databases get no cross-process lock.
    """

    def __init__(self, url: str):
        self.url = url
        self.backend = make_url(url).get_backend_name()
        self.path = sqlite.path_of(url)
        self.conn: sqlalchemy.Connection | None = None
        self.local = threading.Lock()

    @contextmanager
    def hold(self, key: int) -> Iterator[None]:
        with self.local:
            if self.backend == "postgresql":
                conn = self.connection()
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            elif self.path is not None:
                path = f"{self.path}.{LOCK_FILES.get(key, f'{key:x}')}.lock"
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    _flock(fd, path)
                    yield
                finally:
                    os.close(fd)  # closing the descriptor releases the lock
            else:
                yield

    def connection(self) -> sqlalchemy.Connection:
        """The process's connection to the database that holds its advisory locks."""
        if self.conn is None:
            engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
            try:
                self.conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise unreachable("search.storage", self.url, exc) from None
            atexit.register(self.conn.close)
        return self.conn


def _flock(fd: int, path: str) -> None:
    """Take the exclusive lock on ``fd``, waiting for it between checks for Ctrl-C/SIGTERM."""
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not waited:
                log.info("waiting for another process using this study storage (%s)", path)
                waited = True
            interrupt.check()
            time.sleep(0.05)


_locks: dict[str, StorageLock] = {}


def storage_lock(url: str) -> StorageLock:
    """The process's lock object for ``url`` (one database connection per storage)."""
    if url not in _locks:
        _locks[url] = StorageLock(url)
    return _locks[url]


@contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Hold while creating store schemas, the study and its parent run: once, for all workers."""
    with storage_lock(url).hold(CREATE_LOCK):
        yield


def newest_study(backend, key: str, fingerprint: str, created: str) -> str | None:
    """The name of the newest study with this fingerprint, if any."""
    summaries = optuna.get_all_study_summaries(backend, include_best_trial=False)
    matching = [s for s in summaries if s.user_attrs.get(key) == fingerprint]
    if not matching:
        return None
    return max(matching, key=lambda s: (s.user_attrs.get(created, ""), s.study_name)).study_name


def new_study_name(backend, prefix: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    taken = set(optuna.get_all_study_names(backend))
    name = f"{prefix}-{stamp}"
    return next(
        n for i in range(len(taken) + 2) if (n := name if i == 0 else f"{name}-{i}") not in taken
    )
