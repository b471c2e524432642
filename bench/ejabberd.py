"""A private ejabberd (Debian's 23.01) on loopback for bench/xmpp.py, beside the built-in server.

Not the system service: its own config, Mnesia spool and port under a temporary folder, run as
the `ejabberd` user (setpriv keeps the caller's open-files limit, which su would cut to 1024)
straight through `erl` without a node name, so no epmd and no Erlang distribution port. Accounts
come by in-band registration (mod_register, open on its loopback port, no per-address wait),
which the benchmark does over its own client connections. Needs `apt-get install ejabberd`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections import deque
from pathlib import Path

from knock.lab.daemons import EJABBERD_C2S, ejabberd_libs
from knock.tlsutil import ensure_self_signed

USER = "ejabberd"
_CONFIG = (
    EJABBERD_C2S
    + """\
    starttls: true
    max_stanza_size: 65536
    backlog: 1024
access_rules:
  register:
    allow: all
auth_method: internal
auth_password_format: scram
registration_timeout: infinity
modules:
  mod_register:
    ip_access: all
    access: register
"""
)


def installed() -> bool:
    return shutil.which("erl") is not None and ejabberd_libs() is not None


class Ejabberd:
    name = "ejabberd"
    accounts_in_band = True

    def __init__(self, domain: str) -> None:
        if not installed():
            raise RuntimeError("ejabberd is not installed: `apt-get install ejabberd` as root")
        self.domain = domain
        self.root = Path(tempfile.mkdtemp(prefix="knock-ejabberd-"))
        self.certificate = str(self.root / "cert.pem")
        self.port = 0
        self.pid = 0
        self._process: asyncio.subprocess.Process | None = None
        self._tail: deque[str] = deque(maxlen=50)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ensure_self_signed(self.root / "cert.pem", self.root / "key.pem", [self.domain])
        self.port = _free_port()
        config = self.root / "ejabberd.yml"
        config.write_text(
            _CONFIG.format(domain=self.domain, root=self.root, address="127.0.0.1", port=self.port)
        )
        (self.root / "spool").mkdir()
        if os.geteuid() == 0:
            for path in [self.root, *self.root.rglob("*")]:
                shutil.chown(path, USER, USER)
        await self._launch()

    async def restart(self) -> None:
        """Stop and start again, same port and spool (the accounts stay): a fresh process,
        without what registering them left in its heaps."""
        await self._terminate()
        await self._launch()

    async def _launch(self) -> None:
        config = self.root / "ejabberd.yml"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "ERL_LIBS": str(ejabberd_libs()),
            "EJABBERD_CONFIG_PATH": str(config),
            "EJABBERD_LOG_PATH": str(self.root / "ejabberd.log"),
            "ERL_MAX_PORTS": "32000",
            "ERL_CRASH_DUMP_BYTES": "0",
        }
        as_user = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups"]
        # +sbwt none: idle schedulers sleep instead of spinning on the two cores the benchmark's
        # clients share with the server.
        erl = ["erl", "+K", "true", "+P", "250000", "+sbwt", "none", "+sbwtdcpu", "none"]
        erl += ["+sbwtdio", "none", "-noinput", "-mnesia", "dir", f'"{self.root}/spool"']
        self._process = await asyncio.create_subprocess_exec(
            *(as_user if os.geteuid() == 0 else []), *erl, "-s", "ejabberd",
            cwd=self.root, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        # setpriv, erl and erlexec each exec the next: the process started is beam.smp itself.
        self.pid = self._process.pid
        self._reader = asyncio.create_task(self._read())
        # At loglevel warning (per-connection log lines would cost it CPU and memory in the
        # measurement) it does not say when it listens: its port is tried until it answers.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if (
                    self._process.returncode is None
                    and asyncio.get_running_loop().time() < deadline
                ):
                    await asyncio.sleep(0.05)
                    continue
                await self._terminate()
                tail = "".join(self._tail)
                raise RuntimeError(
                    f"ejabberd did not listen on port {self.port}:\n{tail}"
                ) from None
            writer.close()
            return

    async def _read(self) -> None:
        """Keep the last lines of its console log, for when it fails to start."""
        assert self._process is not None and self._process.stdout is not None
        async for raw in self._process.stdout:
            self._tail.append(raw.decode(errors="replace"))

    async def stop(self) -> None:
        await self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            await self._reader


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
