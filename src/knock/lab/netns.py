"""Network namespaces from Python: host checks, `ip` commands, threads that enter a namespace,
and removing namespaces with whatever still runs in them.

A network namespace belongs to a thread, not a process, so a thread that enters one creates its
sockets there while the rest of the process stays on the host; a socket keeps its namespace for
life, so it can be handed back to the caller's event loop afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

T = TypeVar("T")

NETNS_DIR: Final = Path("/run/netns")  # where `ip netns add` pins namespaces by name
CLONE_NEWNET: Final = 0x40000000
# Tool -> the Debian package that has it (scripts/prepare-test-host.sh installs them).
TOOLS: Final = {"ip": "iproute2", "nft": "nftables", "conntrack": "conntrack"}
# Root's tools live in sbin, which a user's PATH (or a CI step's) may leave out.
_SBIN: Final = ("/usr/sbin", "/sbin")
STOP_GRACE_S: Final = 1.0  # how long a process in a namespace gets to exit on SIGTERM


class LabError(RuntimeError):
    """The lab cannot be built or used; the message says what to do about it."""


def tool_paths() -> dict[str, str]:
    """Full paths of ip, nft and conntrack, or LabError naming the packages to install."""
    if os.geteuid() != 0:
        raise LabError(
            "the NAT lab needs root: network namespaces, veth pairs and nftables are root-only. "
            "Run it as root (CI does), e.g. `sudo .venv/bin/pytest tests/lab` or "
            "`sudo .venv/bin/knock lab nat`"
        )
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    found = {name: shutil.which(name, path=search) for name in TOOLS}
    missing = sorted(TOOLS[name] for name, path in found.items() if path is None)
    if missing:
        raise LabError(
            f"the NAT lab needs the Debian packages {', '.join(missing)}: run "
            "`sh scripts/prepare-test-host.sh` as root (`make test` does), or "
            f"`apt-get update && apt-get install -y {' '.join(missing)}`"
        )
    return {name: path for name, path in found.items() if path is not None}


def command(argv: Sequence[str], *, stdin: str | None = None, timeout: float = 10.0) -> str:
    """Run a set-up command; its stdout, or LabError quoting the command and its stderr."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"`{' '.join(argv)}` could not run: {exc}") from exc
    if done.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


_libc = ctypes.CDLL(None, use_errno=True)


def enter(name: str) -> None:
    """Move the calling thread, and only it, into the named network namespace."""
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def call_in(name: str, fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a fresh thread inside the namespace; its result or its exception."""
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def body() -> None:
        try:
            enter(name)
            outcome.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller, who decides
            outcome.set_exception(exc)

    thread = threading.Thread(target=body, name=f"netns {name}", daemon=True)
    thread.start()
    thread.join()
    return outcome.result()


def socket_in(name: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket that lives in the namespace, usable from any thread (and by asyncio's `sock=`)."""
    return call_in(name, socket.socket, family, kind, proto)


def write_sysctl(name: str, key: str, value: str) -> None:
    """Set a net.* sysctl in the namespace: /proc/sys/net shows the reading thread's namespace."""
    path = Path("/proc/sys") / key.replace(".", "/")
    call_in(name, path.write_text, value)


class _LoopInNamespace:
    """Thread body that runs one coroutine on a loop of its own inside a namespace."""

    def __init__(self, name: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self.name = name
        self.factory = factory
        self._lock = threading.Lock()
        self._cancelled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    def __call__(self) -> Any:
        enter(self.name)
        with asyncio.Runner() as runner:
            loop = runner.get_loop()
            # getaddrinfo and other executor work must run inside the namespace too.
            loop.set_default_executor(
                concurrent.futures.ThreadPoolExecutor(initializer=enter, initargs=(self.name,))
            )
            task = loop.create_task(self.factory())
            with self._lock:
                self._loop, self._task = loop, task
                if self._cancelled:
                    task.cancel()
            return loop.run_until_complete(task)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._loop is not None and self._task is not None:
                with contextlib.suppress(RuntimeError):  # its loop has already closed
                    self._loop.call_soon_threadsafe(self._task.cancel)


async def run_coroutine_in(name: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Await factory() run on its own event loop in a thread inside the namespace. Cancelling
    the caller cancels it there too."""
    body = _LoopInNamespace(name, factory)
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            outcome.set_result(body())
        except BaseException as exc:  # handed to the awaiting caller
            outcome.set_exception(exc)

    threading.Thread(target=run, name=f"netns loop {name}", daemon=True).start()
    waiting = asyncio.wrap_future(outcome)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        body.cancel()
        with contextlib.suppress(BaseException):
            await waiting
        raise


def exec_argv(ip: str, name: str, argv: Sequence[str]) -> list[str]:
    """`ip netns exec NAME argv...`: the command runs with the namespace's network."""
    if not argv:
        raise ValueError("no command to run in the namespace")
    return [ip, "netns", "exec", name, *argv]


def names() -> list[str]:
    """Every namespace `ip netns` knows, from its pin folder."""
    try:
        return sorted(entry.name for entry in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def pids_in(ip: str, name: str) -> set[int]:
    """Processes whose network namespace is the named one (`ip netns pids`)."""
    try:
        out = command([ip, "netns", "pids", name])
    except LabError:
        return set()  # already gone
    return {int(word) for word in out.split()}


def _wait_exits(pidfds: set[int], seconds: float) -> set[int]:
    """Wait up to `seconds` for the processes to exit; return those still running."""
    deadline = time.monotonic() + seconds
    waiting = set(pidfds)
    while waiting and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(list(waiting), [], [], left)  # readable = exited
        waiting -= set(readable)
    return waiting


def stop_processes(pids: Iterable[int], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM, then SIGKILL whatever has not exited within `grace` seconds."""
    handles: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            handles[pid] = os.pidfd_open(pid)  # a handle that cannot point at a reused pid
    try:
        for fd in handles.values():
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGTERM)
        waiting = _wait_exits(set(handles.values()), grace)
        for fd in waiting:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        # SIGKILL is delivered asynchronously: a busy machine may take a moment to end them, and
        # a namespace is only empty once they are gone.
        _wait_exits(waiting, grace)
    finally:
        for fd in handles.values():
            os.close(fd)


def remove(ip: str, namespaces: Sequence[str]) -> list[str]:
    """Stop every process in the namespaces and delete them, which deletes their veths and
    nftables tables with them. Goes on past failures and returns them as messages."""
    present = [name for name in namespaces if (NETNS_DIR / name).exists()]
    # A process started just before (`ip netns exec` between its fork and its setns) joins after
    # the first look: look again until no one is left, a bounded number of times.
    for _look in range(5):
        pids = set().union(*(pids_in(ip, name) for name in present))
        if not pids:
            break
        stop_processes(pids)
    problems = []
    for name in present:
        try:
            command([ip, "netns", "del", name])
        except LabError as exc:
            if (NETNS_DIR / name).exists():  # else another cleaner got there first: fine
                problems.append(str(exc))
    return problems


def owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
