"""Embedded PostgreSQL 16 from the pgserver wheel, listening on 127.0.0.1:PORT.

pgserver itself listens on a unix socket only; we run its bundled ``initdb``/``pg_ctl`` ourselves
so the server is reachable over TCP by every Scout process.

Example::

    pg = EmbeddedPostgres(Path(".scout/pg"), port=free_port())
    pg.start(); dsn = pg.dsn("postgres"); ...; pg.stop()
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cli.services import free_port, wait_until


def _pgserver() -> Any:
    with warnings.catch_warnings():  # pgserver asks platformdirs for a runtime dir it does not use here
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.utils
    return pgserver


def _bin_dir() -> Path:
    return Path(_pgserver().__file__).parent / "pginstall" / "bin"


def client_tool(name: str) -> Path:
    """A PostgreSQL 16 client program shipped in the pgserver wheel (``pg_dump``, ``psql``, ...)."""
    return _bin_dir() / name


def _system_user() -> str | None:
    """pgserver's convention: as root, postgres runs as the ``pgserver`` system user."""
    if os.geteuid() != 0:
        return None
    _pgserver().utils.ensure_user_exists("pgserver")
    return "pgserver"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.absolute()
        self._user = _system_user()

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _run(self, exe: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(_bin_dir() / exe), *args],
            check=True,
            timeout=timeout,
            user=self._user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            import pwd

            ensure_prefix_permissions = _pgserver().utils.ensure_prefix_permissions
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(_bin_dir())
            entry = pwd.getpwnam(self._user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def start(self) -> str:
        """Initialise (first time) and start the server; returns the DSN of database ``postgres``."""
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres")
        if self.running():
            return self.dsn()
        log = self.data_dir / "postgres.log"
        if self._user is not None and not log.exists():
            log.touch()
            import pwd

            entry = pwd.getpwnam(self._user)
            os.chown(log, entry.pw_uid, entry.pw_gid)
        options = f"-h {self.host} -p {self.port} -k '' -c max_connections=200 -c fsync=on"
        try:
            self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(log), "-o", options, "start")
        except subprocess.CalledProcessError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {tail}") from exc
        wait_until(self._accepts, timeout=30, what=f"PostgreSQL on {self.host}:{self.port}")
        self._pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        return self.dsn()

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists() and self._accepts()

    def stop_stale(self) -> None:
        """Stop a server left running on this data directory by an earlier, interrupted run."""
        if not (self.pgdata / "postmaster.pid").exists():
            return
        status = subprocess.run([str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "status"],
                                user=self._user, capture_output=True, timeout=30)
        if status.returncode == 0:
            self.stop()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; if its data directory vanished meanwhile, stop the postmaster by its pid."""
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-m", mode, "stop", timeout=60)
                return
            except subprocess.CalledProcessError:
                pass
        pid = getattr(self, "_pid", None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown of the postmaster and its children

    def create_database(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
            conn.execute(stmt)
        return self.dsn(name)
