"""What the store raises when a caller or an operator has something to fix."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's own errors."""


class UnknownDeviceError(StoreError, LookupError):
    """The device id names no stored device."""

    def __init__(self, device_id: str, action: str) -> None:
        super().__init__(
            f"cannot {action}: device {device_id!r} is not in the store. Devices are added by "
            "their first Inform; check the id, or wait until the device has contacted the ACS."
        )
        self.device_id = device_id


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer Knock than this one."""

    def __init__(self, found: int, latest: int) -> None:
        super().__init__(
            f"the database is at schema version {found}, but this Knock knows versions up to "
            f"{latest} only. Upgrade Knock to the release that last wrote this database "
            "(or a newer one), or point it at another database."
        )
        self.found = found
        self.latest = latest


class QueryTimeoutError(StoreError):
    """A read for the NBI ran past its time and was stopped (Database.read)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"the query ran longer than {timeout_s:g} s and was stopped: narrow it (fewer "
            "devices, conditions or values; a projection; skip and limit), or raise "
            "nbi_query_timeout (--nbi-query-timeout)"
        )
        self.timeout_s = timeout_s


class ReadsStoppedError(StoreError):
    """A read for the NBI was stopped because Knock is shutting down."""

    def __init__(self) -> None:
        super().__init__("Knock is shutting down; send the request again once it is back")


class IdempotencyKeyReusedError(StoreError, ValueError):
    """A task was posted with an idempotency key the device's other task already carries."""

    def __init__(self, device_id: str, key: str, task_id: str) -> None:
        super().__init__(
            f"the Idempotency-Key {key!r} already names task {task_id} of device {device_id}, "
            "which is another task: retry a POST with its own key, and give each new task a new "
            "one"
        )
        self.device_id = device_id
        self.task_id = task_id
