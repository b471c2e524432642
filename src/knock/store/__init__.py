"""Persistent state: SQLite by default, PostgreSQL when several ACS processes share the work."""

from knock.store.errors import SchemaTooNewError, StoreError, UnknownDeviceError
from knock.store.store import Store

__all__ = ["SchemaTooNewError", "Store", "StoreError", "UnknownDeviceError"]
