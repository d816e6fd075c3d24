"""An embedded Postgres 16 for development and tests, from the ``pgserver`` package.

pgserver ships real Postgres binaries on PyPI and copes with running as root (it runs the server as a system user
of its own), which plain ``initdb`` refuses. The server listens on a Unix socket only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

__all__ = ["EmbeddedPostgres"]


class EmbeddedPostgres:
    """A Postgres server whose data lives in ``pgdata``; started on construction, stopped by :meth:`stop`.

    ``on_stop="delete"`` also removes the data folder (tests); ``"stop"`` keeps it for next time (``make run``).
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
            except ImportError:  # pragma: no cover - reached only in an install without the dev dependencies
                raise RuntimeError(
                    "no DATABASE_URL is set and pgserver is not installed: set DATABASE_URL to a Postgres 16 "
                    "database, or run from the repository with `make run`"
                ) from None
        pgdata.mkdir(parents=True, exist_ok=True)
        self._pgdata = pgdata
        self.log: Path = pgdata / "log"  # the server's log file
        self._server = get_server(pgdata, cleanup_mode=on_stop)
        # pg_ctl, run as pgserver's own system user when we are root (made at import, so unknown to mypy)
        self._pg_ctl: Any = getattr(_commands, "pg_ctl")  # noqa: B009
        self.dsn: str = self._server.get_uri()

    def stop(self) -> None:
        """Stop the server (and delete its data when asked to).

        pgserver stops the server only when no other process it knows of still uses it, and its list keeps the
        ids of processes that were killed (a ``journal dev`` killed outright), which would leave the server
        running for good. So a server still running after pgserver's clean-up is stopped here. One data folder
        serves one ``journal dev`` (or one test run) at a time."""
        self._server.cleanup()
        if (self._pgdata / "postmaster.pid").exists():
            self.stop_server()

    def stop_server(self) -> None:
        """Stop the Postgres process but keep this handle, to :meth:`start_server` again (an outage)."""
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user)

    def start_server(self) -> None:
        """Start the Postgres process again after :meth:`stop_server`, as it was first started."""
        self._server.ensure_postgres_running()
