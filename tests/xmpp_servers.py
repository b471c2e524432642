"""XMPP servers for the tests, behind one small interface (domain, host, port, certificate,
`register`, `restart`) so that a test runs against both: Knock's built-in server, and a real
Prosody, started once per test module that asks for it (`running_prosody`).

Prosody is Debian's (`make test` installs it through scripts/prepare-test-host.sh). It runs
from a fresh temporary folder owned by the `prosody` user (it refuses to run as root), on
127.0.0.1 at a free port, with s2s and the rate limits off and a self-signed certificate for
its virtual host, so that STARTTLS is offered but not required. Accounts are registered with
prosodyctl. See shared/LAB-NOTES.md.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from knock.labca import CA_CERT
from knock.tlsutil import ensure_self_signed
from knock.xmpp.accounts import MemoryAccounts
from knock.xmpp.c2s import Policy
from knock.xmpp.server import Listen, XmppServer

DOMAIN = "xmpp.example"
USER = "prosody"
_START_TIMEOUT_S = 20
_START_ATTEMPTS = 3
_CONFIG = """\
daemonize = false
pidfile = "{root}/prosody.pid"
data_path = "{root}/data"
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{}}
s2s_ports = {{}}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "posix" }}
modules_disabled = {{ "s2s", "offline", "c2s_limits", "limits" }}
authentication = "internal_hashed"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
log = {{ info = "*console" }}
certificates = "{root}/certs"
ssl = {{ certificate = "{root}/cert.pem"; key = "{root}/key.pem"; }}
VirtualHost "{domain}"
"""


class KnockXmpp:
    """Knock's built-in server on 127.0.0.1, STARTTLS with a certificate its lab CA signed
    (`certificate` is the CA's, what clients trust)."""

    domain = DOMAIN
    host = "127.0.0.1"

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self.accounts = MemoryAccounts(iterations=64)  # a low count keeps the tests fast
        self.port = 0
        self.certificate = data_dir / CA_CERT
        self.server: XmppServer | None = None

    def register(self, username: str, password: str) -> None:
        self.accounts.add(username, password)

    async def start(self) -> None:
        listen = Listen(host=self.host, port=self.port, tls_port=0, data_dir=self._data_dir)
        self.server = XmppServer(Policy(DOMAIN), self.accounts, listen)
        await self.server.start()
        self.port = self.server.port

    async def restart(self) -> None:
        """Stop (every stream ends with system-shutdown), then listen on the same port."""
        await self.stop()
        await self.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None


@asynccontextmanager
async def running_knock(data_dir: Path) -> AsyncIterator[KnockXmpp]:
    server = KnockXmpp(data_dir)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


_accounts = itertools.count(1)


def account(server: KnockXmpp | Prosody, resource: str = "cwmp") -> tuple[str, str]:
    """A new account on *server* (a name no test used before, since a Prosody serves a whole
    module): its full JID with *resource*, and its password."""
    name = f"dev-{next(_accounts)}"
    server.register(name, f"{name}-pw")
    return f"{name}@{server.domain}/{resource}", f"{name}-pw"


@contextmanager
def running_prosody() -> Iterator[Prosody]:
    """A running Prosody for *DOMAIN*, stopped and deleted at the end."""
    server = Prosody()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _find(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.fail(
            f"Prosody is missing ({program} is not on PATH): run `make test`, which installs it, "
            "or `apt-get install prosody`",
            pytrace=False,
        )
    return found


class Prosody:
    domain = DOMAIN
    host = "127.0.0.1"

    def __init__(self) -> None:
        self._prosody = _find("prosody")
        self._prosodyctl = _find("prosodyctl")
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="knock-prosody-"))
        self.config = self.root / "prosody.cfg.lua"
        self.certificate = self.root / "cert.pem"
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log: list[str] = []

    def start(self) -> None:
        first = not self.port
        if first:
            ensure_self_signed(self.certificate, self.root / "key.pem", [DOMAIN])
            (self.root / "data").mkdir()
            (self.root / "certs").mkdir()
        # A free port may be taken between choosing and binding it: then another is chosen.
        for _attempt in range(_START_ATTEMPTS if first else 1):
            if self._launch(self.port or _free_port()):
                return
        pytest.fail(f"test Prosody did not start:\n{''.join(self._log)[-4000:]}", pytrace=False)

    def _launch(self, port: int) -> bool:
        """Start on *port*; True once its c2s port listens, False when it exits first."""
        self.config.write_text(_CONFIG.format(root=self.root, port=port, domain=DOMAIN))
        if self.as_root:
            shutil.chown(self.root, USER, USER)
            for path in self.root.rglob("*"):
                shutil.chown(path, USER, USER)
        self._lines = queue.Queue()
        self._process = subprocess.Popen(
            [*self._as_user(), self._prosody, "--config", str(self.config), "-F"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()
        # Prosody says when the port is open; its word is waited for, not a guessed delay.
        activated = f"Activated service 'c2s' on [127.0.0.1]:{port}"
        while True:
            try:
                line = self._lines.get(timeout=_START_TIMEOUT_S)
            except queue.Empty:
                self._terminate()
                return False
            if line is None:
                self._terminate()
                return False
            if activated in line:
                self.port = port
                return True

    @property
    def pid(self) -> int:
        """The running Prosody's process id (setpriv execs it, so it is the one started)."""
        assert self._process is not None, "Prosody is not running"
        return self._process.pid

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self._log.append(line)
                self._lines.put(line)
        self._lines.put(None)

    def _as_user(self) -> Sequence[str]:
        # setpriv keeps the caller's open-files limit, which runuser would reset to 1024.
        if not self.as_root:
            return ()
        return ("setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups")

    def register(self, username: str, password: str) -> None:
        command = [self._prosodyctl, "--config", str(self.config), "register", username, DOMAIN]
        done = subprocess.run(
            [*command, password],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            why = f"{done.stdout}{done.stderr}"
            pytest.fail(f"prosodyctl register {username}: {why}", pytrace=False)

    async def restart(self) -> None:
        """Stop, then start again on the same port: every client connection is dropped."""
        await asyncio.to_thread(self._terminate)
        await asyncio.to_thread(self.start)

    def stop(self) -> None:
        try:
            self._terminate()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)  # it closes the pipe once it has read the last line


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
