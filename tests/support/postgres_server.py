"""A throwaway PostgreSQL for the test run: Debian's server binaries, a temporary data dir, a free loopback port.

PostgreSQL refuses to run as root, so as root (CI) the server runs as the `postgres` user the Debian package
creates. Used by tests/conftest.py when SGS_TEST_POSTGRES_URL is not set."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from sgs.kafka.launch import free_port

BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


class PostgresUnavailable(Exception):
    """No server binaries here, or the server would not start."""


class ThrowawayPostgres:
    """Its data dir is a directory of its own under the system temp dir (pytest's are private to root, which the
    `postgres` user cannot enter), removed by `stop`."""

    def __init__(self) -> None:
        if not BINARIES:
            raise PostgresUnavailable(
                "no PostgreSQL server binaries in /usr/lib/postgresql (package postgresql)"
            )
        self.bin = BINARIES[-1].parent
        self.data_dir = Path(tempfile.mkdtemp(prefix="sgs-test-postgres-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.url = f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        as_user = ["runuser", "-u", self.user, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_user, *argv], capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(argv[0]).name} failed: {(done.stdout + done.stderr).strip()[-400:]}"
            )

    def start(self) -> ThrowawayPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, self.user)
        pgdata = str(self.data_dir / "pgdata")
        self._run(
            str(self.bin / "initdb"), "-D", pgdata, "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", pgdata, "-o", options, "-l", f"{pgdata}.log", "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data_dir / "pgdata"), "-m", "fast", "-w", "stop"
            )
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
