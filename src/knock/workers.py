"""`knock serve --workers N`: N ACS processes on one PostgreSQL database, sharing the ports.

Each worker is a whole `knock serve` (knock.server.start) whose CWMP, NBI and STUN sockets are
bound with SO_REUSEPORT, so the kernel spreads connections and datagrams over them; what they
must agree on lives in the database (sessions, tasks, credentials, NAT bindings), and their
announcements cross by LISTEN/NOTIFY (knock.store.relay). Worker 0 starts first and alone: it
migrates the schema, makes the certificates and runs the built-in XMPP server. A worker that dies
is started again; its sessions' devices come back in another's.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from knock.config import ConfigError, Settings

log = logging.getLogger("knock.workers")

_READY_TIMEOUT_S = 60.0
_RESTART_DELAY_S = 1.0
_STOP_TIMEOUT_S = 10.0


def supervise(settings: Settings) -> None:
    """Run the workers until SIGINT or SIGTERM, then stop them; pass SIGHUP (reload the
    certificates) on to each."""
    # fork, not spawn: the workers inherit the logging set up by the command line, and this
    # process has no event loop or threads yet.
    context = multiprocessing.get_context("fork")
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    workers: dict[int, BaseProcess] = {}

    def reload(_signum: int, _frame: object) -> None:
        for process in workers.values():
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    signal.signal(signal.SIGHUP, reload)
    try:
        for index in range(settings.workers):
            workers[index] = _start_worker(context, settings, index)
        print(
            f"Knock: {settings.workers} worker processes, pids "
            f"{' '.join(str(p.pid) for p in workers.values())}",
            flush=True,
        )
        while not stopping:
            wait([p.sentinel for p in workers.values()], timeout=0.5)
            for index, process in list(workers.items()):
                if stopping or process.is_alive():
                    continue
                log.warning(
                    "worker %d (pid %s) exited with %s; starting it again",
                    index,
                    process.pid,
                    process.exitcode,
                )
                time.sleep(_RESTART_DELAY_S)
                workers[index] = _start_worker(context, settings, index)
    finally:
        _stop_all(list(workers.values()))


def _start_worker(
    context: multiprocessing.context.ForkContext, settings: Settings, index: int
) -> BaseProcess:
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_worker_main, args=(settings, index, sender), name=f"knock-worker-{index}"
    )
    process.start()
    sender.close()
    # One at a time: the next worker finds the schema, the certificates and the XMPP server.
    if not receiver.poll(_READY_TIMEOUT_S) or not _ready(receiver):
        process.kill()
        process.join()
        raise ConfigError(
            f"worker {index} did not start (exit code {process.exitcode}); its error is above"
        )
    return process


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
    asyncio.run(
        serve_forever(settings, announce=index == 0, worker=index, ready=lambda: ready.send(True))
    )


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
