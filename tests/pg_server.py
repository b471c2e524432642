"""A real PostgreSQL server for the tests, started once per session when a test first asks for it.

The server is Debian's (`make test` installs it through scripts/prepare-test-host.sh). It runs
from a fresh temporary folder: initdb with trust authentication on loopback only, listening on
127.0.0.1 at a free port, durability switched off for speed, stopped and deleted at the end.
PostgreSQL refuses to run as root, so under root (as in CI) it runs as the `postgres` user.

Developers with a server of their own set KNOCK_TEST_PG_URL to a scratch database instead; its
tables are dropped by the tests.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from knock.store.engine import open_database
from knock.store.schema import metadata

DATABASE = "knock_test"
SUPERUSER = "postgres"
# Only what a test database can do without: a crash loses it anyway.
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
_START_TIMEOUT_S = 60
_START_ATTEMPTS = 3


async def emptied(url: str) -> str:
    """The database at `url` with Knock's tables dropped, for a test to start afresh."""
    db = open_database(url)
    try:
        await db.run(metadata.drop_all)
    finally:
        await db.close()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """`postgresql://postgres@127.0.0.1:PORT/knock_test`, an empty database on a real server."""
    own = os.environ.get("KNOCK_TEST_PG_URL")
    if own:
        yield own
        return
    server = _Server(_bin_dir())
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_postgres() -> Iterator[_Server]:
    """A PostgreSQL server of the test's own, which it may stop and start (`pause`, `resume`)
    without disturbing the session's shared server."""
    server = _Server(_bin_dir())
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _bin_dir() -> Path:
    """Where initdb and pg_ctl are: Debian's newest /usr/lib/postgresql/<ver>/bin, else PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if found:
        newest = max(found, key=lambda p: _version_key(Path(p).parent.parent.name))
        return Path(newest).parent
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    pytest.fail(
        "the PostgreSQL server binaries are missing (no /usr/lib/postgresql/<version>/bin): "
        "run `make test`, which installs them, or `apt-get install postgresql`; or set "
        "KNOCK_TEST_PG_URL=postgresql://user@host/scratch_db to use a server of your own",
        pytrace=False,
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class _Server:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="knock-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        if self.as_root:
            # The server's user owns the folder: its data, log and socket all live in it.
            shutil.chown(self.root, user="postgres", group="postgres")
        self._run(
            "initdb",
            f"--pgdata={self.data}",
            f"--username={SUPERUSER}",
            "--auth-local=trust",
            # initdb's host lines are 127.0.0.1/32 and ::1/128 only; the server listens on the
            # first alone.
            "--auth-host=trust",
            # Byte order and UTF-8, whatever the host's locale; as SQLite compares text.
            "--no-locale",
            "--encoding=UTF8",
            "--no-sync",
        )
        for attempt in range(_START_ATTEMPTS):
            # The port may be taken between choosing it and binding it: then another is chosen.
            self.port = _free_port()
            if self._pg_ctl_start(check=attempt == _START_ATTEMPTS - 1):
                break
        self.started = True
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, DATABASE)

    def _pg_ctl_start(self, check: bool) -> bool:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {self.root}",
                *(f"-c {setting}" for setting in _FAST_SETTINGS),
            ]
        )
        return self._run(
            "pg_ctl",
            "start",
            f"--pgdata={self.data}",
            f"--log={self.log}",
            f"--options={options}",
            "--wait",
            f"--timeout={_START_TIMEOUT_S}",
            check=check,
        )

    def pause(self) -> None:
        """Stop the server as an outage would (connections cut), keeping its data and port."""
        self._run("pg_ctl", "stop", f"--pgdata={self.data}", "-m", "immediate", "--wait")

    def resume(self) -> None:
        """Start a paused server again on its port."""
        self._pg_ctl_start(check=True)

    def postmaster_pid(self) -> int:
        """The server's main process (the first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "stop", f"--pgdata={self.data}", "-m", "immediate", "--wait")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str, check: bool = True) -> bool:
        """Run a PostgreSQL program as the server's user; a failure fails the test with its log."""
        command: Sequence[str] = [str(self.bin_dir / program), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return True
        if check:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            pytest.fail(
                f"test PostgreSQL: {' '.join(command)} exited {done.returncode}\n"
                f"{done.stdout}{done.stderr}{log}",
                pytrace=False,
            )
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
