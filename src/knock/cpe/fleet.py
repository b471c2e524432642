"""A fleet of simulated devices: in this process, or spread over worker processes.

Descriptors decide the shape (LAB-NOTES: 20000 per process): each worker has one listening
socket for all its devices' connection requests and one client connection per device only while
that device is in a session, so 10,000 devices fit in two workers with room to spare. Each
worker runs its own asyncio loop, which also spreads the devices' CPU over the cores. The parent
adds up what the workers report; it never touches a device.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Final

from knock.cpe.fleet_config import FleetConfig, FleetError
from knock.cpe.fleet_stats import FleetSnapshot, FleetStats
from knock.cpe.fleet_worker import log, run_worker

STOP_GRACE: Final = 10.0  # seconds a worker gets to stop before it is killed
_LINE_LIMIT: Final = 1 << 20  # a stats line carries counts only; a log line may be long


class Fleet:
    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self._latest: dict[int, FleetStats] = {}
        self._updated = asyncio.Event()
        self._began = 0.0
        self.online_after: float | None = None  # seconds from start until all were online

    @property
    def stats(self) -> FleetStats:
        return sum(self._latest.values(), FleetStats())

    def snapshot(self) -> FleetSnapshot:
        elapsed = time.monotonic() - self._began if self._began else 0.0
        return FleetSnapshot(self.config, self.stats, elapsed, self.online_after)

    async def wait_until(self, predicate: Callable[[FleetStats], bool]) -> FleetStats:
        """Wait for a report that makes *predicate* true of the whole fleet."""
        while not predicate(stats := self.stats):
            await self._updated.wait()
        return stats

    async def run(self, stop: asyncio.Event) -> FleetStats:
        """Run every device until *stop* is set; the last figures. Raises `FleetError`."""
        self.config.validate()
        self._began = time.monotonic()
        with _state_dir(self.config.state_dir) as state_dir:
            config = replace(self.config, state_dir=state_dir)
            slices = config.slices()
            if config.workers == 1:
                await run_worker(config, slices[0], lambda s: self._update(0, s), stop)
            else:
                await self._run_processes(config, slices, stop)
        return self.stats

    async def _run_processes(
        self, config: FleetConfig, slices: list[range], stop: asyncio.Event
    ) -> None:
        halt = asyncio.Event()  # the caller's stop, or a worker that failed: all stop in order
        relay = asyncio.create_task(stop.wait())
        relay.add_done_callback(lambda _: halt.set())
        workers = [
            asyncio.create_task(self._run_process(config, index, numbers, halt))
            for index, numbers in enumerate(slices)
        ]
        try:
            for finished in asyncio.as_completed(workers):
                await finished
        finally:
            halt.set()
            relay.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    def _update(self, index: int, stats: FleetStats) -> None:
        self._latest[index] = stats
        if self.online_after is None and self.stats.online >= self.config.count:
            self.online_after = time.monotonic() - self._began
        # Wake every waiter once; the next report gets a fresh event.
        self._updated.set()
        self._updated = asyncio.Event()

    async def _run_process(
        self, config: FleetConfig, index: int, numbers: range, stop: asyncio.Event
    ) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "knock.cpe.fleet_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
            # Ctrl-C reaches the parent only, which then stops the workers in order.
            start_new_session=True,
        )
        assert process.stdin is not None and process.stdout is not None
        job = {"config": config.to_json(), "first": numbers.start, "stop": numbers.stop}
        process.stdin.write(json.dumps(job).encode() + b"\n")
        reader = asyncio.create_task(self._read(index, process.stdout))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():  # the worker closed its output on its own: it is exiting
                code = await process.wait()
                first, last = config.serial(numbers[0]), config.serial(numbers[-1])
                raise FleetError(
                    f"worker {index + 1} (devices {first} to {last}) exited with code {code} "
                    "before it was asked to stop; its messages above say why"
                )
        finally:
            stopped.cancel()
            await _stop(process, reader)

    async def _read(self, index: int, stdout: asyncio.StreamReader) -> None:
        async for line in stdout:
            try:
                message = json.loads(line)
            except ValueError:  # something in the worker printed; pass it on as it is
                log.warning("worker %d: %s", index + 1, line.decode(errors="replace").rstrip())
                continue
            if "stats" in message:
                self._update(index, FleetStats.from_json(message["stats"]))
            else:
                level, text = message["log"]
                log.log(level, "%s", text)


async def _stop(process: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Close the worker's stdin, its signal to stop; kill it if it takes too long."""
    if process.returncode is None:
        assert process.stdin is not None
        process.stdin.close()
        try:
            async with asyncio.timeout(STOP_GRACE):
                await reader  # its last report comes before it exits
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader


@contextlib.contextmanager
def _state_dir(configured: str) -> Iterator[str]:
    """The configured folder, or a temporary one removed afterwards: in memory (/dev/shm)
    where there is one, since devices write their state at every change."""
    if configured:
        yield configured
        return
    memory = Path("/dev/shm")
    folder = tempfile.mkdtemp(prefix="knock-sim-", dir=memory if memory.is_dir() else None)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
