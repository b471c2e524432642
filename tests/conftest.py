"""Fixtures every test directory may ask for; each lives in its own module."""

from collections.abc import Iterator

import pytest

from nat_lab import nat_lab
from pg_server import own_postgres, postgres_url
from wire_schema import VIOLATIONS, guard_build_envelope

__all__ = ["nat_lab", "own_postgres", "postgres_url"]

guard_build_envelope()


@pytest.fixture(autouse=True)
def _built_envelopes_follow_the_schema() -> Iterator[None]:
    """Fail a test during which Knock built a message the CWMP schema rejects, wherever it
    was built (the ACS, the simulator, a helper), since a peer on the same codec would not."""
    VIOLATIONS.clear()
    yield
    found = list(VIOLATIONS)
    VIOLATIONS.clear()
    assert not found, "\n".join(found)
