"""A failed write of credentials raises an error that names no secret on any driver: neither
SQLAlchemy's "[parameters: ...]" nor PostgreSQL's "Failing row contains (...)" detail, which both
held the password, reach the exception's text or its traceback (what a log line would show)."""

from __future__ import annotations

import traceback

import pytest

from db_faults import refuse_credentials
from knock.store import Store

from .helpers import DEVICE, Record

SECRET = "pw-must-not-leak-0123456789"


def _as_logged(exc: BaseException) -> str:
    """The exception as logging.exception shows it: the whole chain with every message."""
    return "".join(traceback.format_exception(exc))


@pytest.mark.parametrize("method", ["set_cr_credentials", "set_stun_credentials"])
async def test_a_refused_password_is_not_in_the_error(
    store: Store, record: Record, db_url: str, method: str
) -> None:
    await record(DEVICE)
    await refuse_credentials(db_url)
    with pytest.raises(Exception) as caught:
        await getattr(store, method)(DEVICE, "user-1", SECRET)
    logged = _as_logged(caught.value)
    assert "refuse_credentials" in logged or "credentials refused" in logged
    assert SECRET not in logged
    assert "[parameters:" not in logged
