"""The statements of the ACS's per-session path, built once.

Building an SQLAlchemy statement costs more CPU than SQLite takes to run it (measured: 730 against
290 microseconds per Inform session), so these are made once and take their values as execute()
parameters. The upserts use INSERT ... ON CONFLICT, which SQLite and PostgreSQL share but
SQLAlchemy builds per dialect.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    Insert,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import BindParameter, ColumnElement

from knock.store.schema import (
    devices,
    digest_nonces,
    parameters,
    sessions,
    stun_bindings,
    tasks,
    xmpp_accounts,
)
from knock.vocab import TaskStatus

# Takes device_id.
DROP_PARAMETERS = delete(parameters).where(parameters.c.device_id == bindparam("device_id"))

# Takes device_id, new_cr_username, new_cr_password.
SET_CR_CREDENTIALS = (
    update(devices)
    .where(devices.c.id == bindparam("device_id"))
    .values(cr_username=bindparam("new_cr_username"), cr_password=bindparam("new_cr_password"))
)

# Takes device_id.
DEVICE_LACKS = select(devices.c.lacks).where(devices.c.id == bindparam("device_id"))

MANAGEMENT_SERVERS = ("Device.ManagementServer.", "InternetGatewayDevice.ManagementServer.")

# Takes device_id. What a connection request needs, in one statement (one round trip): the
# device's credentials, STUN binding and lacks (what provisioning must not ask, read with them
# at a session's start), repeated on a row for each parameter under its ManagementServer object
# (one row with path None if it has none, no row if no such device).
CR_TARGET = (
    select(
        devices.c.cr_username,
        devices.c.cr_password,
        devices.c.stun_username,
        stun_bindings.c.host,
        stun_bindings.c.port,
        devices.c.lacks,
        parameters.c.path,
        parameters.c.value,
    )
    .select_from(
        devices.outerjoin(
            stun_bindings, stun_bindings.c.username == devices.c.stun_username
        ).outerjoin(
            parameters,
            and_(
                parameters.c.device_id == devices.c.id,
                or_(*(parameters.c.path.startswith(p) for p in MANAGEMENT_SERVERS)),
            ),
        )
    )
    .where(devices.c.id == bindparam("device_id"))
)

# Takes the sessions columns.
OPEN_SESSION = insert(sessions).returning(sessions.c.id)

# A session already ended (superseded by the device's next Inform, perhaps in another process)
# keeps the outcome it ended with.
END_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"), sessions.c.ended.is_(None))
    .values(ended=bindparam("ended_at"), outcome=bindparam("session_outcome"))
)

# A device has one session: its Inform ends every other one still open, wherever it runs (a
# process that was killed, or one that has not noticed yet).
SUPERSEDE_SESSIONS = (
    update(sessions)
    .where(sessions.c.device_id == bindparam("informing_device"), sessions.c.ended.is_(None))
    .values(ended=bindparam("superseded_at"), outcome="superseded")
    .returning(sessions.c.id)
)

# Once a session died, a task still running in it belongs to none that lives: each is settled
# by knock.store.retry (retried, faulted, or `unknown`) through RETRY_TASK.
_running = select(tasks.c.id, tasks.c.name, tasks.c.attempts, tasks.c.session_id).where(
    tasks.c.status == TaskStatus.RUNNING
)
# A device's tasks running in a session that has ended. Not those of a session still open: on
# PostgreSQL the Inform settles them after its statement, by when a newer Inform of the device
# (in another process) may have opened a session that claimed one.
_live = sessions.alias("live")
RUNNING_OF_DEVICE = _running.where(
    tasks.c.device_id == bindparam("informing_device"),
    ~select(_live.c.id).where(_live.c.id == tasks.c.session_id, _live.c.ended.is_(None)).exists(),
)
RUNNING_IN_SESSION = _running.where(tasks.c.session_id == bindparam("dead_session"))
# Every task still running, when the one process on an SQLite file starts after a crash.
RUNNING_ALL = _running.add_columns(tasks.c.device_id)

# Every session still open, at that same start: the process that held them is gone.
ABORT_SESSIONS = (
    update(sessions)
    .where(sessions.c.ended.is_(None))
    .values(ended=bindparam("ended_at"), outcome="aborted")
)

RETRY_TASK = (
    update(tasks)
    .where(tasks.c.id == bindparam("retried_task"), tasks.c.status == TaskStatus.RUNNING)
    .values(
        status=bindparam("retry_status"),
        attempts=bindparam("retry_attempts"),
        session_id=bindparam("retry_session"),
        finished=bindparam("retry_finished"),
        fault_code=bindparam("retry_fault_code"),
        fault_string=bindparam("retry_fault_string"),
        not_before=bindparam("retry_not_before"),
    )
)

# The alias makes the subquery scan tasks on its own rather than correlate with the row the
# UPDATE looks at. PostgreSQL skips a task another claimer has locked; the outer status test
# turns a claim that lost a race into a no-op, so one task never goes to two sessions.
# A session claims only while it is open. On PostgreSQL it holds its session row (FOR SHARE)
# until the claim commits: an Inform of the same device in another process, which ends the
# session (SUPERSEDE_SESSIONS), then waits and requeues the claimed task, or goes first and the
# claim finds the session ended.
_queued = tasks.alias("queued")
_claimer_open = (
    select(sessions.c.id)
    .where(sessions.c.id == bindparam("claiming_session"), sessions.c.ended.is_(None))
    .with_for_update(read=True)
    .exists()
)
CLAIM_TASK = (
    update(tasks)
    .where(
        tasks.c.id
        == select(_queued.c.id)
        .where(
            _queued.c.device_id == bindparam("claiming_device"),
            _queued.c.status == TaskStatus.QUEUED,
            # A task waiting out its retry back-off lets the ones behind it run.
            or_(_queued.c.not_before.is_(None), _queued.c.not_before <= bindparam("claiming_at")),
        )
        .order_by(_queued.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery(),
        tasks.c.status == TaskStatus.QUEUED,
        _claimer_open,
    )
    .values(status=TaskStatus.RUNNING, session_id=bindparam("claiming_session"))
    .returning(*tasks.c)
)

# PostgreSQL only (SQLite has no UPDATE in WITH): CLAIM_TASK, and END_SESSION if it claimed
# nothing, as one statement: one round trip where the two in a transaction take four (BEGIN and
# COMMIT are round trips too). Both run on one snapshot, as in that transaction; the claim's
# lock on the session row is this statement's own. Takes the parameters of both.
_claimed = CLAIM_TASK.cte("claimed")
CLAIM_OR_END = select(_claimed).add_cte(
    update(sessions)
    .where(
        sessions.c.id == bindparam("session_id"),
        sessions.c.ended.is_(None),
        ~select(_claimed.c.id).exists(),
    )
    .values(ended=bindparam("ended_at"), outcome=bindparam("session_outcome"))
    .cte("ended")
)

# A task no longer running in this session (deleted through the NBI, finished already, or
# requeued when the device moved to another session) stays as it is.
FINISH_TASK = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("finished_task"),
        tasks.c.status == TaskStatus.RUNNING,
        tasks.c.session_id == bindparam("finishing_session"),
    )
    .values(
        status=bindparam("final_status"),
        finished=bindparam("finished_at"),
        result=bindparam("task_result"),
        fault_code=bindparam("task_fault_code"),
        fault_string=bindparam("task_fault_string"),
        fault_detail=bindparam("task_fault_detail"),
    )
)


def _insert(dialect_name: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    raise ValueError(f"the store cannot upsert on {dialect_name!r}; use SQLite or PostgreSQL")


# The columns an Inform gives its device (InformRecord.device_row).
DEVICE_UPSERT_COLUMNS = (
    "id",
    "manufacturer",
    "oui",
    "product_class",
    "serial_number",
    "registered",
    "last_inform",
    "last_boot",
    "last_bootstrap",
)


def device_upsert(dialect_name: str) -> Insert:
    """Takes every devices column; `registered` counts only when the device is new."""
    stmt = _insert(dialect_name, devices)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[devices.c.id],
        set_={
            "manufacturer": new.manufacturer,
            "oui": new.oui,
            "product_class": new.product_class,
            "serial_number": new.serial_number,
            "last_inform": new.last_inform,
            # NULL means this Inform had no such event, and the earlier time still holds.
            "last_boot": func.coalesce(new.last_boot, devices.c.last_boot),
            "last_bootstrap": func.coalesce(new.last_bootstrap, devices.c.last_bootstrap),
            # A device that bootstrapped (a factory reset, a new unit) has lost the
            # credentials Knock set.
            **{
                name: case((new.last_bootstrap.is_(None), devices.c[name]), else_=None)
                for name in ("cr_username", "cr_password", "stun_username", "stun_password")
            },
        },
    )


def parameter_upsert(dialect_name: str) -> Insert:
    """Takes every parameters column; see Store.put_parameters for how NULLs merge."""
    return _merging_parameters(_insert(dialect_name, parameters))


def _merging_parameters(
    stmt: sqlite.Insert | postgresql.Insert, fresh: ColumnElement[bool] | None = None
) -> Insert:
    """`stmt`, an INSERT into parameters, merging a row into the stored one of its path (see
    Store.put_parameters); with `fresh` true, the row replaces it instead, as if none had been
    stored."""
    new = stmt.excluded
    merged = {
        # A typed value replaces value and type together, so a NULL value is then written.
        "value": case(
            (new.type.is_not(None), new.value),
            else_=func.coalesce(new.value, parameters.c.value),
        ),
        "type": func.coalesce(new.type, parameters.c.type),
        "writable": func.coalesce(new.writable, parameters.c.writable),
    }
    if fresh is not None:
        merged = {name: case((fresh, new[name]), else_=value) for name, value in merged.items()}
    return stmt.on_conflict_do_update(
        index_elements=[parameters.c.device_id, parameters.c.path],
        set_={**merged, "timestamp": new.timestamp},
    )


def _parameters_of_arrays() -> tuple[BindParameter[Any], postgresql.Insert]:
    """PostgreSQL: an INSERT of the parameters given as arrays (param_paths, param_values,
    param_types, param_writable; param_at) for device `id`, one row per path; and the paths'
    array."""
    paths = bindparam("param_paths", type_=ARRAY(parameters.c.path.type))
    reported = (
        func.unnest(
            paths,
            bindparam("param_values", type_=ARRAY(parameters.c.value.type)),
            bindparam("param_types", type_=ARRAY(parameters.c.type.type)),
            bindparam("param_writable", type_=ARRAY(parameters.c.writable.type)),
        )
        .table_valued("path", "value", "type", "writable")
        .render_derived()
    )
    stored = postgresql.insert(parameters).from_select(
        ["device_id", "path", "value", "type", "writable", "timestamp"],
        select(
            bindparam("id", type_=devices.c.id.type),
            reported.c.path,
            reported.c.value,
            reported.c.type,
            reported.c.writable,
            bindparam("param_at", type_=parameters.c.timestamp.type),
        ),
    )
    return paths, stored


# PostgreSQL only: all an Inform writes, as one statement without BEGIN and COMMIT, one round
# trip where a transaction of its statements took five. It upserts the device (its columns by
# name, as device_upsert takes them) and the Inform's parameters, given as arrays
# (param_paths, param_values, param_types, param_writable; param_at); with `bootstrap` true it
# drops the device's other parameters and replaces those it reports instead of merging them
# (as DROP_PARAMETERS before the upsert would: the rows the two touch are apart, which one
# statement needs). It ends the device's open sessions (SUPERSEDE_SESSIONS: on one snapshot it
# cannot see the new one) and opens its new session (opening_at, opening_events,
# opening_version). Sub-statements share one snapshot, and foreign keys are checked when the
# statement ends, so a new device's parameters and session stand. Returns the new session's
# id, how many sessions it superseded, and whether the device had a task running when the
# statement began: if either, the caller settles the device's tasks running in ended sessions
# (RUNNING_OF_DEVICE, `TaskRetry`) in a transaction of its own, whose fresh snapshot also sees
# a claim that committed meanwhile. A crash in between leaves them running in an ended
# session; the device's next Inform sees them and settles them then, as SQLite's path looks
# at every Inform.
def _inform_cte() -> Select[Any]:
    bootstrap = bindparam("bootstrap", type_=Boolean)
    device = device_upsert("postgresql").values({n: bindparam(n) for n in DEVICE_UPSERT_COLUMNS})
    paths, stored = _parameters_of_arrays()
    dropped = delete(parameters).where(
        parameters.c.device_id == bindparam("id"),
        bootstrap,
        parameters.c.path != func.all(paths),
    )
    superseded = SUPERSEDE_SESSIONS.cte("superseded")
    opened = (
        insert(sessions)
        .values(
            device_id=bindparam("id"),
            started=bindparam("opening_at", type_=sessions.c.started.type),
            events=bindparam("opening_events", type_=sessions.c.events.type),
            cwmp_version=bindparam("opening_version"),
        )
        .returning(sessions.c.id)
        .cte("opened")
    )
    running = (
        select(tasks.c.id)
        .where(tasks.c.device_id == bindparam("id"), tasks.c.status == TaskStatus.RUNNING)
        .exists()
    )
    return (
        select(
            opened.c.id,
            select(func.count()).select_from(superseded).scalar_subquery().label("superseded"),
            running.label("running"),
        )
        .add_cte(device.cte("device"))
        .add_cte(dropped.cte("dropped"))
        .add_cte(_merging_parameters(stored, bootstrap).cte("reported"))
    )


def binding_upsert(dialect_name: str) -> Insert:
    """Takes every stun_bindings column; the newest sighting wins."""
    stmt = _insert(dialect_name, stun_bindings)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[stun_bindings.c.username],
        set_={"host": new.host, "port": new.port, "seen": new.seen},
    )


def xmpp_account_upsert(dialect_name: str) -> Insert:
    """Takes every xmpp_accounts column; new credentials replace the old."""
    stmt = _insert(dialect_name, xmpp_accounts)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[xmpp_accounts.c.username],
        set_={
            "salt": new.salt,
            "iterations": new.iterations,
            "stored_key": new.stored_key,
            "server_key": new.server_key,
            "device_id": new.device_id,
        },
    )


def nonce_count_advance(dialect_name: str) -> Insert:
    """Takes nonce, nc and issued; returns the nonce when nc is higher than any count recorded
    for it (a new nonce, or the next request on it), nothing for a replay. One statement, so two
    processes given the same count cannot both accept it."""
    stmt = _insert(dialect_name, digest_nonces)
    return stmt.on_conflict_do_update(
        index_elements=[digest_nonces.c.nonce],
        set_={"nc": stmt.excluded.nc},
        where=digest_nonces.c.nc < stmt.excluded.nc,
    ).returning(digest_nonces.c.nonce)


def keyed_task_insert(dialect_name: str) -> Insert:
    """Takes the tasks columns; a task whose device already has one under the same
    idempotency key is not inserted (and nothing is returned)."""
    return (
        _insert(dialect_name, tasks)
        .on_conflict_do_nothing(index_elements=[tasks.c.device_id, tasks.c.idempotency_key])
        .returning(*tasks.c)
    )


def first_wins_insert(dialect_name: str, table: Table) -> Insert:
    """Takes every column of `table`; the first process to store a key wins, the others keep
    the stored row and read it (shared_secrets, cwmp_user_devices)."""
    return _insert(dialect_name, table).on_conflict_do_nothing(
        index_elements=list(table.primary_key.columns)
    )


INFORM = _inform_cte()

# PostgreSQL only: what a device's provisioning found, as one statement without BEGIN and COMMIT
# where put_parameters and SET_CR_CREDENTIALS took a round trip each: the parameters (arrays,
# as INFORM takes them, one row per path) merged as Store.put_parameters merges them, and the
# device's connection-request credentials (new_cr_username, new_cr_password) set. Takes id.
PROVISIONED = (
    update(devices)
    .where(devices.c.id == bindparam("id"))
    .values(cr_username=bindparam("new_cr_username"), cr_password=bindparam("new_cr_password"))
    .add_cte(_merging_parameters(_parameters_of_arrays()[1]).cte("provisioned"))
)
