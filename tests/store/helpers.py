"""Names the store tests share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

# The `record` fixture: records an Inform the way the ACS does and returns the session id.
Record = Callable[..., Awaitable[int]]

DEVICE = "00D09E-HG8245-SN0001"
OTHER = "00D09E-HG8245-SN0002"
