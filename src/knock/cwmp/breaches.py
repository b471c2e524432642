"""Session rules a CPE can break while the ACS still reads it unambiguously: the ACS copes,
and records each breach on the session (`knock.cwmp.session`, `knock.acs.service`), so a
device stays manageable and `knock check` can judge it from the record."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Rule(StrEnum):
    EMPTY_POST = "empty-post"  # TR-069 §3.7.1: the CPE ends its turn with an empty HTTP POST
    CWMP_ID = "cwmp-id"  # §3.5: a response carries the cwmp:ID of its request
    COOKIE = "cookie"  # §3.4.2: the CPE returns the ACS's session cookie on later POSTs


@dataclass(frozen=True, slots=True)
class Breach:
    rule: Rule
    detail: str  # what the CPE did, in one line

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"
