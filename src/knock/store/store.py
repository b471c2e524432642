"""The store: every read and write of persistent state goes through `Store`.

STUB: signatures fixed, bodies to be written. Callers (ACS session service, NBI) rely on the
signatures and docstrings below.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.sql.expression import ColumnElement

from knock.store.rows import (
    DeviceRow,
    InformRecord,
    ParamValue,
    SessionRow,
    StoredParam,
    TaskRow,
)


class Store:
    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect and migrate. `url` is "sqlite:///path.db", "sqlite:///:memory:" or a
        "postgresql://user:pw@host/db" URL; the async driver (aiosqlite / asyncpg) is chosen here."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # --- sessions (the ACS) -------------------------------------------------------------------
    async def record_inform(self, rec: InformRecord) -> int:
        """Upsert the device, store the Inform's parameters, open a session row; return its id.
        With "0 BOOTSTRAP" among the events, the device's stored parameters are dropped first
        (tasks are kept). "1 BOOT" sets last_boot, "0 BOOTSTRAP" last_bootstrap."""
        raise NotImplementedError

    async def end_session(self, session_id: int, outcome: str, now: datetime) -> None:
        raise NotImplementedError

    async def claim_next_task(self, device_id: str, session_id: int) -> TaskRow | None:
        """The oldest queued task of the device, atomically marked running in this session."""
        raise NotImplementedError

    async def finish_task(
        self,
        task_id: int,
        status: str,
        now: datetime,
        *,
        result: Any = None,
        fault_code: str | None = None,
        fault_string: str | None = None,
        fault_detail: Any = None,
    ) -> None:
        """Mark a running task done or faulted."""
        raise NotImplementedError

    async def requeue_running(self, device_id: str | None = None) -> int:
        """Put tasks left running (a session died, or the process did) back in the queue.
        None means every device (used at start-up). Returns how many."""
        raise NotImplementedError

    async def put_parameters(
        self, device_id: str, params: Sequence[ParamValue], now: datetime
    ) -> None:
        """Insert or update parameters. A field given as None keeps the stored one, except that
        value and type are always written together when `type` is not None."""
        raise NotImplementedError

    async def delete_parameters_under(self, device_id: str, prefix: str) -> int:
        """Remove every parameter whose path starts with `prefix` (an object path ending in ".")."""
        raise NotImplementedError

    # --- devices (the NBI) --------------------------------------------------------------------
    async def get_device(self, device_id: str) -> DeviceRow | None:
        raise NotImplementedError

    async def find_devices(
        self,
        where: ColumnElement[bool] | None,
        order_by: Sequence[ColumnElement[Any]] = (),
        skip: int = 0,
        limit: int | None = None,
    ) -> list[DeviceRow]:
        """Devices matching `where`, an SQLAlchemy expression over `schema.devices` (and
        correlated EXISTS subqueries over `schema.parameters`), built by the NBI."""
        raise NotImplementedError

    async def get_parameters(
        self, device_ids: Sequence[str], prefixes: Sequence[str] = ()
    ) -> dict[str, list[StoredParam]]:
        """Parameters of each device, optionally only those under the given path prefixes."""
        raise NotImplementedError

    async def delete_device(self, device_id: str) -> bool:
        """Remove the device with its parameters, sessions, tasks and attempts."""
        raise NotImplementedError

    async def list_sessions(self, device_id: str, limit: int = 50) -> list[SessionRow]:
        raise NotImplementedError

    # --- tasks (the NBI) ----------------------------------------------------------------------
    async def add_task(
        self, device_id: str, name: str, spec: dict[str, Any], now: datetime
    ) -> TaskRow:
        raise NotImplementedError

    async def get_task(self, task_id: int) -> TaskRow | None:
        raise NotImplementedError

    async def find_tasks(
        self, where: ColumnElement[bool] | None, skip: int = 0, limit: int | None = None
    ) -> list[TaskRow]:
        """Tasks matching `where`, an SQLAlchemy expression over `schema.tasks`, oldest first."""
        raise NotImplementedError

    async def delete_task(self, task_id: int) -> bool:
        raise NotImplementedError
