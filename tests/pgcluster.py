"""A throwaway PostgreSQL 15 + PostGIS cluster for tests.

``start_cluster()`` runs initdb in a fresh temp dir, starts the server on a
free loopback port (TCP on 127.0.0.1 only, its Unix socket in the temp dir,
trust auth: nothing outside this machine can reach it), creates a database
with PostGIS and returns a :class:`Cluster` with its URL. ``stop()`` shuts it
down and removes the dir; an ``atexit`` hook does the same if a test run dies
before its fixture's ``finally``.

initdb refuses to run as root, so under root the server binaries run as the
``postgres`` user (``runuser``), in a dir that user owns. Durability is off
(``fsync=off``): the data is thrown away anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

BIN = "/usr/lib/postgresql/15/bin"
EXTENSION = "/usr/share/postgresql/15/extension/postgis.control"
DBNAME = "citystack"


class Unavailable(RuntimeError):
    """PostgreSQL 15 or PostGIS is not installed here (tests skip with this reason)."""


def missing() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if not os.path.exists(f"{BIN}/initdb"):
        return f"{BIN}/initdb is absent: install PostgreSQL 15 (`make postgis`)"
    if not os.path.exists(EXTENSION):
        return f"{EXTENSION} is absent: install PostGIS 3 for PostgreSQL 15 (`make postgis`)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb as"
    return None


@dataclass
class Cluster:
    folder: str
    port: int
    user: str
    url: str = ""
    _stopped: bool = field(default=False, repr=False)

    @property
    def data(self) -> str:
        return os.path.join(self.folder, "data")

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run([f"{BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.folder, "server.log"), *args],
                    self.user, check=check)

    def start(self) -> None:
        self.pg_ctl("-w", "-t", "60", "start")

    def restart(self, down: float = 0.0) -> None:
        """Stop the server (fast: sessions are cut), wait `down` seconds, start it again."""
        self.pg_ctl("-w", "-m", "fast", "stop")
        if down:
            time.sleep(down)
        self.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.pg_ctl("-w", "-m", "fast", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        try:
            with open(os.path.join(self.folder, "server.log")) as fh:
                return fh.read()
        except OSError:
            return ""


@contextlib.contextmanager
def running():
    """A started cluster for a test fixture: skips the tests when PostgreSQL or
    PostGIS is missing, and stops the cluster however the tests end."""
    import pytest

    reason = missing()
    if reason:
        pytest.skip(reason)
    try:
        cluster = start_cluster()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


def start_cluster() -> Cluster:
    """A running cluster with database ``citystack`` and PostGIS; raises Unavailable when it cannot be."""
    reason = missing()
    if reason:
        raise Unavailable(reason)
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    folder = tempfile.mkdtemp(prefix="citystack-pg-")
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(folder=folder, port=_free_port(), user=user)
    atexit.register(cluster.stop)
    try:
        _run([f"{BIN}/initdb", "-D", cluster.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--locale=C.UTF-8"], user)
        with open(os.path.join(cluster.data, "postgresql.conf"), "a") as conf:
            conf.write(f"\nport = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{folder}'\nmax_connections = 200\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        cluster.start()
        cluster.url = f"postgresql://postgres@127.0.0.1:{cluster.port}/{DBNAME}"
        _create_database(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _create_database(cluster: Cluster) -> None:
    import psycopg

    admin = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {DBNAME}")
    with psycopg.connect(cluster.url, autocommit=True) as con:
        try:
            con.execute("CREATE EXTENSION postgis")
        except psycopg.Error as exc:
            raise Unavailable(f"CREATE EXTENSION postgis failed: {exc}") from None


def _run(cmd: list[str], user: str, check: bool = True) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
