"""The NAT lab tests: `nat_lab` (from tests/nat_lab.py) is one lab per test module."""

from nat_lab import nat_lab

__all__ = ["nat_lab"]
