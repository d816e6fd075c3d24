"""An embedded Postgres 16 for development and tests, from the ``pgserver`` package.

pgserver ships real Postgres binaries on PyPI and copes with running as root (it runs the server as a system user
of its own), which plain ``initdb`` refuses. The server listens on a Unix socket only.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Literal

__all__ = ["EmbeddedPostgres", "Origin"]

# How this handle came by its server (docs/20_EVENT_JOURNAL.md#running-it): "started" and "adopted" servers are
# stopped by :meth:`EmbeddedPostgres.stop`, a "shared" one (another live process started it) never is.
Origin = Literal["started", "adopted", "shared"]


class EmbeddedPostgres:
    """A Postgres server whose data lives in ``pgdata``; started (or found running) on construction.

    :meth:`stop` stops it only when this handle is responsible for it: it started it, or adopted it from a process
    that is gone (``origin``). ``on_stop="delete"`` also removes the data folder (tests); ``"stop"`` keeps it for
    next time (``make run``). The process responsible for the server is recorded in ``<pgdata>/owner.pid``.
    """

    def __init__(self, pgdata: Path, *, on_stop: Literal["stop", "delete"] = "stop") -> None:
        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (CI, root shells) pgserver keeps its lock in /tmp/runtime-<uid>, which is
            # what we want; the warning platformdirs gives about it says nothing anyone can act on.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            try:
                # a dev dependency: imported only when wanted
                from pgserver import _commands
                from pgserver.postgres_server import get_server
                from pgserver.utils import PostmasterInfo
            except ImportError:  # pragma: no cover - reached only in an install without the dev dependencies
                raise RuntimeError(
                    "no DATABASE_URL is set and pgserver is not installed: set DATABASE_URL to a Postgres 16 "
                    "database, or run from the repository with `make run`"
                ) from None
        pgdata.mkdir(parents=True, exist_ok=True)
        self._pgdata = pgdata
        self._owner_file = pgdata / "owner.pid"
        self.log: Path = pgdata / "log"  # the server's log file
        running = PostmasterInfo.read_from_pgdata(pgdata)
        self.origin: Origin = "started"
        if running is not None and running.is_running():
            owner = _read_pid(self._owner_file)
            self.origin = "adopted" if owner is not None and not _alive(owner) else "shared"
        # pgserver stops a server when the last process it knows of lets go; a shared one is never ours to stop
        self._server = get_server(pgdata, cleanup_mode=None if self.origin == "shared" else on_stop)
        if self.origin != "shared":
            self._owner_file.write_text(f"{os.getpid()}\n")
        # pg_ctl, run as pgserver's own system user when we are root (made at import, so unknown to mypy)
        self._pg_ctl: Any = getattr(_commands, "pg_ctl")  # noqa: B009
        self.dsn: str = self._server.get_uri()

    def stop(self) -> None:
        """Stop the server if this handle is responsible for it (and delete its data when asked to).

        pgserver stops the server only when no other process it knows of still uses it, and its list keeps the
        ids of processes that were killed (a ``journal dev`` killed outright), which would leave the server
        running for good. So a server of ours still running after pgserver's clean-up is stopped here."""
        self._server.cleanup()
        if self.origin == "shared":
            return
        if (self._pgdata / "postmaster.pid").exists():
            self.stop_server()
        self._owner_file.unlink(missing_ok=True)

    def stop_server(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop the Postgres process but keep this handle, to :meth:`start_server` again (an outage);
        ``immediate`` stops it as a crash would (the next start recovers, and empties UNLOGGED tables)."""
        self._pg_ctl(["-w", "-m", mode, "stop"], pgdata=self._server.pgdata, user=self._server.system_user)

    def start_server(self) -> None:
        """Start the Postgres process again after :meth:`stop_server`, as it was first started."""
        self._server.ensure_postgres_running()


def _read_pid(path: Path) -> int | None:
    """The process id written in ``path``, or None when there is no such file."""
    try:
        return int(path.read_text())
    except FileNotFoundError:
        return None


def _alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts: it was not reaped yet)."""
    try:
        with contextlib.suppress(PermissionError):  # another user's process: alive all the same
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
