"""SQLite settings shared by the two embedded stores (Optuna's and MLflow's)."""

from __future__ import annotations

import weakref

import sqlalchemy

_done: weakref.WeakSet = weakref.WeakSet()


def write_ahead(engine: sqlalchemy.Engine) -> None:
    """Write-ahead logging without a disk sync per commit, on every connection of ``engine``.

    A trial writes about fifteen small transactions to each store; with SQLite's defaults
    each costs a flush to disk (about 7 ms here). The file stays consistent after a crash;
    a power cut may lose the last transactions, which a resumed study runs again.
    """
    if engine.url.get_backend_name() != "sqlite" or engine in _done:
        return
    _done.add(engine)

    @sqlalchemy.event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()  # connections opened before the listener reconnect with it
