"""Fixtures every test directory may ask for; each lives in its own module."""

from nat_lab import nat_lab
from pg_server import own_postgres, postgres_url

__all__ = ["nat_lab", "own_postgres", "postgres_url"]
