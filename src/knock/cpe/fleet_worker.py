"""One process's share of a fleet: its devices, their connection-request services, reports.

`run_worker` runs in the `knock sim` process itself for a single worker, and in each worker
process otherwise: ``python -m knock.cpe.fleet_worker`` reads its job as one JSON line on stdin,
writes JSON lines on stdout (``{"stats": ...}`` and ``{"log": [level, message]}``), and stops
cleanly when stdin closes, which is also what happens when the parent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable
from typing import Any

from knock.cpe.cr_rate import CrPolicy
from knock.cpe.cr_services import CrServices
from knock.cpe.datamodel import ModelSchema, load_model
from knock.cpe.device import CpeError, SimulatedCpe, trusting_client
from knock.cpe.fleet_config import FleetConfig
from knock.cpe.fleet_stats import FleetStats
from knock.cpe.session_failures import SessionFailures
from knock.cpe.state import StateError
from knock.cpe.trust import device_tls

log = logging.getLogger("knock.sim")

Report = Callable[[FleetStats], None]


class _Worker:
    def __init__(self, config: FleetConfig, numbers: range) -> None:
        self.config = config
        self.numbers = numbers
        self.schema: ModelSchema = load_model(config.model)
        self.tls = device_tls(config.ca_file, frozenset(config.defects))
        self.services = CrServices(
            config.cr_methods,
            CrPolicy(config.cr_busy, config.cr_rate_limit),
            tls=self.tls,
            host=config.cr_host,
        )
        self.failures = SessionFailures(log)  # one line per reason for all the devices
        self.devices: list[SimulatedCpe] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.broken = 0

    def stats(self) -> FleetStats:
        devices = self.devices
        udp, xmpp = self.services.udp, self.services.xmpp
        return FleetStats(
            started=len(devices),
            online=sum(1 for cpe in devices if cpe.counts.informed),
            in_session=sum(1 for cpe in devices if cpe.in_session),
            sessions=sum(cpe.counts.done for cpe in devices),
            errors=self.broken + sum(cpe.counts.failed for cpe in devices),
            failures=dict(self.failures.by_reason),
            cr=dict(self.services.http.gate.totals),
            udp={str(a): n for a, n in udp.gate.totals.items()} if udp is not None else {},
            xmpp={str(a): n for a, n in xmpp.gate.totals.items()} if xmpp is not None else {},
            stun_bound=udp.bound if udp is not None else 0,
            xmpp_online=xmpp.online if xmpp is not None else 0,
        )

    async def start_devices(self) -> None:
        """Power devices on at this worker's share of the start rate."""
        loop = asyncio.get_running_loop()
        rate = self.config.start_rate / self.config.workers
        began = loop.time()
        for index, number in enumerate(self.numbers):
            # Even when behind schedule it yields, so sessions and reports go on meanwhile.
            await asyncio.sleep(max(0.0, began + index / rate - loop.time()))
            self._start(self.config.serial(number))

    def _start(self, serial: str) -> None:
        config = self.config
        try:
            cpe = SimulatedCpe(
                serial,
                self.schema,
                config.state_dir,
                config.acs_url,
                acs_username=config.acs_username,
                acs_password=config.acs_password,
                defects=frozenset(config.defects),
                quirks=frozenset(config.quirks),
                client_factory=trusting_client(self.tls),
                failures=self.failures,
                transfer_tls=self.tls,
            )
            self.services.attach(cpe)
            _configure(cpe, config)
        except (CpeError, StateError) as exc:
            self.broken += 1
            log.error("%s", exc)
            return
        self.devices.append(cpe)
        task = asyncio.create_task(cpe.run(), name=f"cpe-{serial}")
        task.add_done_callback(functools.partial(self._stopped, serial))
        self.tasks.append(task)

    def _stopped(self, serial: str, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        self.broken += 1
        exc = task.exception()
        if isinstance(exc, StateError):  # its message names the device and the remedy
            log.error("%s", exc)
        else:
            log.error("device %s stopped: %r; knock has a bug, please report it", serial, exc)

    async def report_every(self, report: Report) -> None:
        while True:
            report(self.stats())
            await asyncio.sleep(self.config.report_interval)


def _configure(cpe: SimulatedCpe, config: FleetConfig) -> None:
    """What the fleet's options say about every device, applied at each power-on."""
    management = cpe.model.schema.management
    if config.periodic_interval is not None:
        cpe.set_value(management("PeriodicInformEnable"), str(config.periodic_interval > 0).lower())
        if config.periodic_interval:
            cpe.set_value(management("PeriodicInformInterval"), str(config.periodic_interval))
    external = config.external_xmpp
    if external is not None:
        external.configure(cpe)


def _raise_open_files_limit() -> None:
    """Up to the hard limit: a soft limit of 1024, common by default, caps a worker at about a
    thousand devices in session at once."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run_worker(
    config: FleetConfig, numbers: range, report: Report, stop: asyncio.Event
) -> None:
    """Run devices *numbers* of the fleet until *stop* is set; *report* gets their figures
    every `FleetConfig.report_interval` seconds and once more at the end."""
    _raise_open_files_limit()
    worker = _Worker(config, numbers)
    await worker.services.start()
    helpers = [
        asyncio.create_task(worker.start_devices()),
        asyncio.create_task(worker.report_every(report)),
    ]
    try:
        await stop.wait()
    finally:
        for task in helpers + worker.tasks:
            task.cancel()
        for task in helpers + worker.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Reported before the services close: closed, no device is bound or logged in, and
        # the summary would say stun_bound=0 xmpp_online=0 of a fleet that was all online.
        report(worker.stats())
        await worker.services.close()


# --- the worker process ---------------------------------------------------------------------


def _emit(message: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The parent is gone, and so is the end of stdin, which stops this worker. Nothing
        # more can reach anyone: send the rest, interpreter exit included, nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class _ToParent(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _emit({"log": [record.levelno, self.format(record)]})


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    job = json.loads(await stdin.readline())
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def stop_at_eof() -> None:
        await stdin.read()
        stop.set()

    watcher = asyncio.create_task(stop_at_eof())
    numbers = range(job["first"], job["stop"])
    config = FleetConfig.from_json(job["config"])
    await run_worker(config, numbers, lambda s: _emit({"stats": s.to_json()}), stop)
    watcher.cancel()


def main() -> None:
    to_parent = _ToParent()
    to_parent.setFormatter(logging.Formatter("%(message)s"))  # the parent adds time and level
    logging.basicConfig(level=logging.WARNING, handlers=[to_parent], force=True)
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
