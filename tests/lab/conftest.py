"""The NAT lab tests: `nat_lab` (from tests/nat_lab.py) is one lab per test module."""

import sys
from pathlib import Path

from nat_lab import nat_lab

# test_hosts.py plays one device by hand with the ACS tests' ScriptedCpe (tests/acs).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "acs"))

__all__ = ["nat_lab"]
