"""The store's tables (SQLAlchemy Core).

Portable SQL only: SQLite by default, PostgreSQL at scale.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import DateTime, TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware.

    SQLite keeps no offset; without this a naive datetime would come back and compare wrongly
    against aware ones.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    # OUI-ProductClass-SerialNumber, escaped as PROTOCOLS.md §1 says.
    Column("id", String(512), primary_key=True),
    Column("manufacturer", String(256), nullable=False, default=""),
    Column("oui", String(16), nullable=False, default=""),
    Column("product_class", String(256), nullable=False, default=""),
    Column("serial_number", String(256), nullable=False, default=""),
    Column("registered", UtcDateTime, nullable=False),
    Column("last_inform", UtcDateTime, nullable=True),
    Column("last_boot", UtcDateTime, nullable=True),
    Column("last_bootstrap", UtcDateTime, nullable=True),
    # The connection-request credentials Knock set on the device (NULL until it has); they must be
    # kept in clear to answer the device's Digest challenge.
    Column("cr_username", String(256), nullable=True),
    Column("cr_password", String(256), nullable=True),
    # The STUN credentials Knock set (TR-111): the username keys the device's NAT binding.
    Column("stun_username", String(256), nullable=True),
    Column("stun_password", String(256), nullable=True),
    # The device's last login to the built-in XMPP server as that server saw it: ok, or
    # tls-refused (the device aborted the handshake over the certificate, detail the alert).
    Column("xmpp_login_since", UtcDateTime, nullable=True),
    Column("xmpp_login_outcome", String(32), nullable=True),
    Column("xmpp_login_detail", String(256), nullable=True),
    Column("xmpp_login_source", String(64), nullable=True),
    Index("uq_devices_stun_username", "stun_username", unique=True),
    # What the device was found unable to do (knock.vocab.Lack values, a JSON list; NULL: none
    # known), so that later sessions do not try it again. A factory reset keeps it: the
    # firmware is the same.
    Column("lacks", JSON, nullable=True),
    # How the STUN server last answered the device's signed Binding Requests (knock.vocab
    # StunOutcome), from which address, since when: written when it changes, not per keep-alive.
    Column("stun_outcome", String(32), nullable=True),
    Column("stun_source", String(64), nullable=True),
    Column("stun_since", UtcDateTime, nullable=True),
    # How the last provisioning of XMPP connection requests ended (knock.vocab XmppSetup), and
    # what the device did when it failed.
    Column("xmpp_setup", String(32), nullable=True),
    Column("xmpp_setup_detail", Text, nullable=True),
    Column("xmpp_setup_at", UtcDateTime, nullable=True),
)

# Each STUN username's public address as the STUN server last saw it (TR-111 keep-alives), shared
# through the store so that any ACS process can send a UDP connection request.
stun_bindings = Table(
    "stun_bindings",
    metadata,
    Column("username", String(256), primary_key=True),
    Column("host", String(64), nullable=False),
    Column("port", Integer, nullable=False),
    Column("seen", UtcDateTime, nullable=False),
)

parameters = Table(
    "parameters",
    metadata,
    Column(
        "device_id", String(512), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    ),
    # A path ending in "." is an object node (from GetParameterNames); its value and type are NULL.
    Column("path", String(1024), primary_key=True),
    Column("value", Text, nullable=True),
    Column("type", String(32), nullable=True),  # xsd type, e.g. "xsd:string"
    Column("writable", Boolean, nullable=True),
    Column("timestamp", UtcDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(512), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("started", UtcDateTime, nullable=False),
    Column("ended", UtcDateTime, nullable=True),
    Column("events", JSON, nullable=False),  # list of event codes, e.g. ["1 BOOT", "M Reboot"]
    Column("cwmp_version", String(32), nullable=False, default=""),  # namespace the CPE used
    Column("outcome", String(32), nullable=True),  # "ok", "timeout", "fault", "error"
    Index("ix_sessions_device", "device_id", "started"),
    # A device's open session (at most one but for a dead process's): what every Inform ends,
    # found without reading the device's whole history of sessions, which is never pruned.
    Index(
        "ix_sessions_open",
        "device_id",
        sqlite_where=text("ended IS NULL"),
        postgresql_where=text("ended IS NULL"),
    ),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(512), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),  # GenieACS task name, e.g. "getParameterValues"
    Column("spec", JSON, nullable=False),  # the task document as the NBI received it
    Column("status", String(16), nullable=False),  # knock.vocab.TaskStatus
    Column("created", UtcDateTime, nullable=False),
    Column("finished", UtcDateTime, nullable=True),
    Column("session_id", Integer, nullable=True),
    Column("fault_code", String(16), nullable=True),
    Column("fault_string", Text, nullable=True),
    Column("fault_detail", JSON, nullable=True),
    Column("result", JSON, nullable=True),
    # Sessions that died while running the task (closed, timed out, superseded, aborted by a
    # crash); after the last allowed one the task ends faulted (knock.store.retry). A task
    # never resent (knock.vocab.NOT_RESENT) ends `unknown` instead and counts none.
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("not_before", UtcDateTime, nullable=True),  # a retried task waits until then
    Column("idempotency_key", String(128), nullable=True),  # the NBI's Idempotency-Key header
    # The id the NBI shows (knock.store.object_ids), never reused: SQLite gives a deleted last
    # row's `id` to the next one. Always set; nullable only because migration 15 adds it.
    Column("public_id", String(24), nullable=True),
    Index("ix_tasks_device_status", "device_id", "status", "id"),
    Index("uq_tasks_idempotency_key", "device_id", "idempotency_key", unique=True),
    Index("uq_tasks_public_id", "public_id", unique=True),
)

cr_attempts = Table(
    "cr_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(512), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("method", String(8), nullable=False),  # knock.vocab.CrMethod
    Column("started", UtcDateTime, nullable=False),
    Column("ended", UtcDateTime, nullable=True),
    Column("outcome", String(32), nullable=True),  # knock.vocab.CrOutcome
    Column("detail", Text, nullable=True),
    Index("ix_cr_attempts_device", "device_id", "started"),
    # The dashboard's fleet view counts a time window over every device. Covering, because a
    # plain index on `started` made SQLite slower when the window is most of the table (a
    # table lookup per row); measured in docs/performance.md.
    Index("ix_cr_attempts_started", "started", "method", "outcome", "ended"),
)

# Accounts of Knock's built-in XMPP server (TR-069 Annex K): SCRAM-SHA-1 credentials, never a
# password. The ACS creates one per device it provisions for XMPP connection requests.
xmpp_accounts = Table(
    "xmpp_accounts",
    metadata,
    Column("username", String(256), primary_key=True),
    Column("salt", LargeBinary, nullable=False),
    Column("iterations", Integer, nullable=False),
    Column("stored_key", LargeBinary, nullable=False),
    Column("server_key", LargeBinary, nullable=False),
    # The device the account was made for; NULL for the ACS's own and the checker's.
    Column("device_id", String(512), nullable=True),
)

# Secrets every ACS process on one database must share, made by whichever process starts first:
# the password of the ACS's own XMPP account, which several processes log in to.
shared_secrets = Table(
    "shared_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

# The device a per-device CWMP username that is a serial number speaks for: the first device that
# authenticated with it. A serial number alone is the same under every OUI and ProductClass.
cwmp_user_devices = Table(
    "cwmp_user_devices",
    metadata,
    Column("username", String(256), primary_key=True),
    Column("device_id", String(512), nullable=False),
)

# The highest nonce count accepted per CWMP Digest nonce, when several processes share the nonce
# key (PostgreSQL): a Digest answer may reach any of them, and a replay must fail on all.
# Rows older than the nonce lifetime are deleted: such nonces are refused as stale anyway.
digest_nonces = Table(
    "digest_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("nc", BigInteger, nullable=False),
    Column("issued", BigInteger, nullable=False),  # Unix seconds, from the nonce itself
    Index("ix_digest_nonces_issued", "issued"),
)

# Files CPEs download (firmware, configuration), as GenieACS keeps them: a name and the
# metadata headers it was uploaded with. `name` is NULL while an upload streams in, so that the
# file it replaces stays whole until the last chunk is written.
files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(512), nullable=True),
    Column("file_type", String(64), nullable=False, default=""),
    Column("oui", String(16), nullable=False, default=""),
    Column("product_class", String(256), nullable=False, default=""),
    Column("version", String(256), nullable=False, default=""),
    Column("length", BigInteger, nullable=False, default=0),
    Column("md5", String(32), nullable=False, default=""),
    Column("uploaded", UtcDateTime, nullable=False),
    Index("uq_files_name", "name", unique=True),
)

# A file's contents in chunks of knock.store.files.CHUNK_SIZE bytes (the last one shorter), so
# that neither an upload nor a download holds a file whole in memory.
file_chunks = Table(
    "file_chunks",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# Tags an operator (or a preset's add_tag) put on a device: GenieACS's `_tags`.
device_tags = Table(
    "device_tags",
    metadata,
    Column(
        "device_id", String(512), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("tag", String(128), primary_key=True),
    Index("ix_device_tags_tag", "tag"),
)

# GenieACS presets without JavaScript: the document as the NBI took it (checked), by name;
# `weight` orders them (the heavier applied later, so its values win).
presets = Table(
    "presets",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("weight", Integer, nullable=False, default=0),
    Column("doc", JSON, nullable=False),
)
