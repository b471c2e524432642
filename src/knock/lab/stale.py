"""Telling a live lab from a dead run's leftovers, and removing the leftovers.

Each lab holds an exclusive flock on /run/knocklab/<tag>.lock for as long as it exists. The
kernel drops the lock when its holder dies, however it dies (kill -9 included), so a lock that
can be taken means the lab's owner is gone: sounder than a pid, which the system reuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from knock.lab import netns, topology
from knock.lab.netns import LabError

LOCK_DIR: Final = Path("/run/knocklab")  # tmpfs: a reboot, which also drops namespaces, empties it


class OwnerLock:
    """The flock that marks a lab as alive while this process (and nothing else) holds it."""

    def __init__(self, tag: str) -> None:
        self.path = LOCK_DIR / f"{tag}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        # O_CLOEXEC: a command run in the lab must not keep the lab looking alive after us.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LabError(f"another process holds {self.path}: lab tags clash") from None
        self._fd = fd

    def release(self) -> None:
        """Delete the lock file, then let go of the lock (in that order, so a cleaner never
        takes a lock whose lab is still being torn down)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def _owner_gone(tag: str, pid: int) -> bool:
    path = LOCK_DIR / f"{tag}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return not netns.owner_alive(pid)  # no lock file to ask: the pid is all there is
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def clean_stale(ip: str | None = None) -> list[str]:
    """Delete the namespaces (with their veths and nftables tables) of labs whose owner has died;
    live labs, of this process or others, are left alone. Returns the namespaces deleted."""
    ip = ip or netns.tool_paths()["ip"]
    labs: dict[str, tuple[int, list[str]]] = {}  # tag -> (owner pid, namespaces)
    for name in netns.names():
        parsed = topology.parse_name(name)
        if parsed is not None:
            labs.setdefault(parsed.tag, (parsed.pid, []))[1].append(name)
    if LOCK_DIR.is_dir():  # an owner killed before its first namespace leaves only its lock
        for lock in LOCK_DIR.glob(f"{topology.PREFIX}-*.lock"):
            labs.setdefault(lock.name.removesuffix(".lock"), (0, []))
    dead = {tag: names for tag, (pid, names) in labs.items() if _owner_gone(tag, pid)}
    stale = [name for names in dead.values() for name in names]
    problems = netns.remove(ip, stale)
    if problems:
        raise LabError("stale labs could not be removed: " + "; ".join(problems))
    for tag in dead:
        with contextlib.suppress(FileNotFoundError):
            (LOCK_DIR / f"{tag}.lock").unlink()
    return stale
