"""Fixtures every test directory may ask for; each lives in its own module."""

from pg_server import postgres_url

__all__ = ["postgres_url"]
