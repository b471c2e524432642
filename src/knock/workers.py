"""`knock serve --workers N`: N ACS processes on one PostgreSQL database, sharing the ports.

Each worker is a whole `knock serve` (knock.server.start) whose CWMP, NBI and STUN sockets are
bound with SO_REUSEPORT, so the kernel spreads connections and datagrams over them; what they
must agree on lives in the database (sessions, tasks, credentials, NAT bindings), and their
announcements cross by LISTEN/NOTIFY (knock.store.relay). Worker 0 starts first and alone: it
migrates the schema, makes the certificates and runs the built-in XMPP server. A worker that dies
is started again, with back-off while it cannot start (its database down); its sessions'
devices come back in another's.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from knock.config import ConfigError, Settings

log = logging.getLogger("knock.workers")

_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_POLL_S = 0.5  # how often the supervisor looks at stop requests while it waits
# A worker that dies, or fails to start (its database down, say), is started again after
# 1, 2, 4 ... seconds, at most _MAX_DELAY_S apart, for as long as it takes; a worker that has
# served _STABLE_S seconds starts the count again.
_FIRST_DELAY_S = 1.0
_MAX_DELAY_S = 30.0
_STABLE_S = 60.0


@dataclass
class _Slot:
    """One worker's place: its process while it runs, or when to start it again."""

    index: int
    process: BaseProcess | None = None
    serving_since: float = 0.0
    failures: int = 0  # in a row: exits or failed starts without _STABLE_S of service between
    due: float = 0.0  # when to start it again (monotonic), while process is None

    def delay(self) -> float:
        return float(min(_MAX_DELAY_S, _FIRST_DELAY_S * 2 ** max(0, self.failures - 1)))


def supervise(settings: Settings) -> None:
    """Run the workers until SIGINT or SIGTERM, then stop them; pass SIGHUP (reload the
    certificates) on to each. A worker that cannot start at first ends the command (a setting
    to fix); one that dies later is started again, with back-off, however long its cause (a
    database down) lasts."""
    # fork, not spawn: the workers inherit the logging set up by the command line, and this
    # process has no event loop or threads yet.
    context = multiprocessing.get_context("fork")
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    def reload(_signum: int, _frame: object) -> None:
        for slot in slots:
            process = slot.process
            if process is not None and process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    slots = [_Slot(index) for index in range(settings.workers)]
    signal.signal(signal.SIGHUP, reload)
    try:
        for slot in slots:
            slot.process = _start_worker(context, settings, slot.index, lambda: stopping)
            if slot.process is None:
                if stopping:
                    return
                raise ConfigError(f"worker {slot.index} did not start; its error is above")
            slot.serving_since = time.monotonic()
        print(
            f"Knock: {settings.workers} worker processes, pids "
            f"{' '.join(str(slot.process.pid) for slot in slots if slot.process)}",
            flush=True,
        )
        while not stopping:
            _watch(context, settings, slots, lambda: stopping)
    finally:
        _stop_all([slot.process for slot in slots if slot.process is not None])


def _watch(
    context: multiprocessing.context.ForkContext,
    settings: Settings,
    slots: list[_Slot],
    stopping: Callable[[], bool],
) -> None:
    """One round: note the workers that died, start those that are due."""
    running = [slot.process.sentinel for slot in slots if slot.process is not None]
    now = time.monotonic()
    waits = [slot.due - now for slot in slots if slot.process is None]
    timeout = max(0.0, min([_POLL_S, *waits]))
    if running:
        wait(running, timeout=timeout)
    else:
        time.sleep(timeout)  # every worker is down: nothing to wait on but the clock
    for slot in slots:
        if stopping():
            return
        process = slot.process
        if process is not None and not process.is_alive():
            served = time.monotonic() - slot.serving_since
            slot.failures = 1 if served >= _STABLE_S else slot.failures + 1
            slot.process, slot.due = None, time.monotonic() + slot.delay()
            log.warning(
                "worker %d (pid %s) exited with %s; starting it again in %.0f s",
                slot.index,
                process.pid,
                process.exitcode,
                slot.delay(),
            )
        elif process is None and slot.due <= time.monotonic():
            slot.process = _start_worker(context, settings, slot.index, stopping)
            if slot.process is None:
                slot.failures += 1
                slot.due = time.monotonic() + slot.delay()
                log.warning(
                    "worker %d did not start (its error is above); trying again in %.0f s",
                    slot.index,
                    slot.delay(),
                )
            else:
                slot.serving_since = time.monotonic()
                print(f"Knock: worker {slot.index} serving, pid {slot.process.pid}", flush=True)


def _start_worker(
    context: multiprocessing.context.ForkContext,
    settings: Settings,
    index: int,
    stopping: Callable[[], bool],
) -> BaseProcess | None:
    """Start worker `index` and wait until it serves; None when it did not (it is gone)."""
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_worker_main, args=(settings, index, sender), name=f"knock-worker-{index}"
    )
    process.start()
    sender.close()
    # One at a time: the next worker finds the schema, the certificates and the XMPP server.
    deadline = time.monotonic() + _READY_TIMEOUT_S
    with receiver:  # closed each time: a long outage means many tries
        while not receiver.poll(_POLL_S):
            if stopping() or time.monotonic() >= deadline:
                break
        else:
            if _ready(receiver):
                return process
    process.kill()
    process.join()
    return None


def _ready(receiver: Connection) -> bool:
    try:
        return bool(receiver.recv())
    except EOFError:  # the worker died before it was ready
        return False


def _worker_main(settings: Settings, index: int, ready: Connection) -> None:
    from knock.server import serve_forever

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # serve_forever installs its own on its loop
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until then: not the supervisor's
    try:
        asyncio.run(
            serve_forever(
                settings, announce=index == 0, worker=index, ready=lambda: ready.send(True)
            )
        )
    except OSError as exc:
        # Its database down, most likely: one line, since the supervisor retries for as long as
        # it lasts, rather than a traceback at every try.
        log.error("worker %d stopped: %s: %s", index, type(exc).__name__, exc)
        sys.exit(1)


def _stop_all(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
