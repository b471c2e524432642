"""Fixtures every test directory may ask for; each lives in its own module."""

from nat_lab import nat_lab
from pg_server import postgres_url

__all__ = ["nat_lab", "postgres_url"]
