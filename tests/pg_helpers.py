"""A throwaway PostgreSQL for the scale-out tests and the workers benchmark.

Uses the server on 127.0.0.1:5432 when one answers; otherwise starts one: as root the
Debian cluster (``pg_ctlcluster``), as anyone else a fresh ``initdb`` in a temporary
directory on a free port. A login role with a random password (and CREATEDB) is made for
the session; every database created through it is dropped at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROLE = "regtune_test"


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for path in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return path
    raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(host: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(host, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start on {host}:{port}")
        time.sleep(0.2)


@dataclass
class Postgres:
    """A reachable server, the session's role and password, and the databases made."""

    host: str
    port: int
    password: str
    user: str = ROLE
    databases: list[str] = field(default_factory=list)
    stoppers: list = field(default_factory=list)

    def url(self, database: str, *, password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql+psycopg://{self.user}{secret}@{self.host}:{self.port}/{database}"

    def _admin(self):
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        )

    def create_database(self, prefix: str = "regtune_t") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return name

    def drop_databases(self) -> None:
        with self._admin() as conn:
            for name in self.databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.clear()

    def dump(self, database: str) -> str:
        """Every row of every table of ``database``, as text (to search for leaks)."""
        import psycopg

        out = []
        with psycopg.connect(self.url(database).replace("+psycopg", "")) as conn:
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            for (table,) in tables:
                for (row,) in conn.execute(f'SELECT t::text FROM "{table}" t'):
                    out.append(f"{table}: {row}")
        return "\n".join(out)

    def stop(self) -> None:
        for stop in self.stoppers:
            stop()


def _as_root(host: str, port: int) -> None:
    """Start (or create) the Debian cluster on ``port`` if nothing answers there."""
    if _answers(host, port):
        return
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    clusters = [line.split() for line in listing.stdout.splitlines() if line.strip()]
    if not clusters:
        version = Path(sorted(glob.glob("/usr/lib/postgresql/*"))[-1]).name
        subprocess.run(["pg_createcluster", version, "main"], check=True, capture_output=True)
        clusters = [[version, "main"]]
    version, name = clusters[0][0], clusters[0][1]
    subprocess.run(["pg_ctlcluster", version, name, "start"], check=True, capture_output=True)
    _wait(host, port)


def _psql_as_postgres(sql: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", _bin("psql"), "-q", "-v", "ON_ERROR_STOP=1"],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
        cwd="/",
    )


def _initdb() -> tuple[str, int, callable]:
    """A private cluster in a temporary directory (for a non-root user)."""
    data = Path(tempfile.mkdtemp(prefix="regtune-pg-"))
    port = _free_port()
    subprocess.run(
        [
            _bin("initdb"),
            "-D",
            str(data / "db"),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            _bin("pg_ctl"),
            "-D",
            str(data / "db"),
            "-l",
            str(data / "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )

    def psql(sql: str) -> None:
        subprocess.run(
            [
                _bin("psql"),
                "-h",
                str(data),
                "-p",
                str(port),
                "-U",
                "postgres",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "postgres",
            ],
            input=sql,
            text=True,
            check=True,
            capture_output=True,
        )

    def stop() -> None:
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)

    return psql, port, stop


def start() -> Postgres:
    """A server with the session's role, started if needed (see the module docstring)."""
    password = f"pw-{secrets.token_hex(8)}"
    make_role = (
        f"DO $$BEGIN CREATE ROLE {ROLE} LOGIN CREATEDB; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END$$;\n"
        f"ALTER ROLE {ROLE} LOGIN CREATEDB PASSWORD '{password}';\n"
    )
    host, port = "127.0.0.1", int(os.environ.get("REGTUNE_TEST_PG_PORT", "5432"))
    if os.geteuid() == 0:
        _as_root(host, port)
        _psql_as_postgres(make_role)
        return Postgres(host, port, password)
    psql, port, stop = _initdb()
    psql(make_role)
    pg = Postgres(host, port, password)
    pg.stoppers.append(stop)
    return pg
