"""What becomes of a task whose session died while it ran (the device closed the connection,
went silent, or started over, or the ACS process crashed): it is tried again later, with a
back-off, or, after its last allowed attempt, it ends faulted with the reason, as GenieACS
retries and faults its tasks. So a task that crashes the device does not crash it at every
session for ever, and the tasks queued behind it run meanwhile. A task the device may have run
and must not run twice (knock.vocab.NOT_RESENT) is never retried: it ends `unknown` at once.

This is the one place that decides; every path where a session dies (the ACS noticing, the
device's next Inform on SQLite or PostgreSQL, the start after a crash) applies it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from knock.vocab import NOT_RESENT, TaskStatus


@dataclass(frozen=True, slots=True)
class TaskRetry:
    attempts: int = 3  # sessions a task may run in; dying in the last one faults it
    delay: float = 60.0  # seconds before the second retry, doubled for each further one

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"task_attempts must be 1 or more, not {self.attempts}")
        if self.delay < 0:
            raise ValueError(f"task_retry_delay must be 0 s or more, not {self.delay}")

    def after_death(
        self,
        task_id: int,
        name: str,
        attempts: int,
        session_id: int | None,
        reason: str,
        now: datetime,
    ) -> dict[str, Any]:
        """RETRY_TASK's parameters for task *name* that had died in *attempts* sessions before
        the one that just died (ended with outcome *reason*: "closed", "timeout", "aborted"...)."""
        if name in NOT_RESENT:
            # Its RPC went out and no answer came: the device may have run it, and a second run
            # would change the device again. It keeps the session it was sent in, and the
            # death is no attempt to retry (the NBI shows fault code "unknown").
            return {
                "retried_task": task_id,
                "retry_status": TaskStatus.UNKNOWN,
                "retry_attempts": attempts,
                "retry_session": session_id,
                "retry_finished": now,
                "retry_fault_code": None,
                "retry_fault_string": None,
                "retry_not_before": None,
            }
        died = attempts + 1
        if died >= self.attempts:
            return {
                "retried_task": task_id,
                "retry_status": TaskStatus.FAULTED,
                "retry_attempts": died,
                "retry_session": session_id,
                "retry_finished": now,
                "retry_fault_code": reason,
                "retry_fault_string": (
                    f"the device's session ended ({reason}) while this task ran, in {died} "
                    f"session(s) of {self.attempts} allowed; it may crash the device: check "
                    "the task, then queue it again"
                ),
                "retry_not_before": None,
            }
        return {
            "retried_task": task_id,
            "retry_status": TaskStatus.QUEUED,
            "retry_attempts": died,
            "retry_session": None,
            "retry_finished": None,
            "retry_fault_code": None,
            "retry_fault_string": None,
            # The first retry is at once: a session that died of something else (an ACS process
            # killed, a lost connection) should not delay the task. Then the waits grow.
            "retry_not_before": None
            if died == 1
            else now + timedelta(seconds=self.delay * 2 ** (died - 2)),
        }
