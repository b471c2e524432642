"""The third-party servers of the multi-host lab, each in its machine's namespace: PostgreSQL,
ejabberd and HAProxy, from Debian's packages, run from a folder of the lab's own.

Only command lines, configuration files and readiness checks live here; knock.lab.hosts starts
them in their namespaces and stops them with the namespace.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Final

from knock.lab.netns import LabError
from knock.tlsutil import ensure_self_signed

CONTRIB: Final = Path(__file__).resolve().parents[3] / "contrib"
HAPROXY_CONFIG: Final = CONTRIB / "haproxy" / "knock.cfg"

# Debian package -> the program the lab needs from it (scripts/prepare-test-host.sh installs them).
PROGRAMS: Final = {"postgresql": "pg_ctl", "ejabberd": "erl", "haproxy": "haproxy"}


def pg_bin() -> Path:
    """Debian's newest /usr/lib/postgresql/<version>/bin."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if not found:
        raise LabError(missing("postgresql"))
    newest = max(found, key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()])
    return Path(newest).parent


def missing(package: str) -> str:
    return (
        f"the multi-host lab needs the Debian package {package}: run "
        f"`sh scripts/prepare-test-host.sh` as root (`make test` does), or "
        f"`apt-get install -y {package}`"
    )


def require_programs() -> None:
    pg_bin()
    for package in ("ejabberd", "haproxy"):
        if (
            shutil.which(PROGRAMS[package], path=os.pathsep.join([os.environ["PATH"], "/usr/sbin"]))
            is None
        ):
            raise LabError(missing(package))
    if ejabberd_libs() is None:
        raise LabError(missing("ejabberd"))


# -- PostgreSQL -----------------------------------------------------------------------------


def postgres_init(root: Path, network: str) -> list[list[str]]:
    """Commands, run as `postgres`, that make a cluster whose superuser logs in over the local
    socket only and whose `knock` role (made by postgres_role) logs in from `network` with a
    SCRAM password (docs/deploy.md, "PostgreSQL")."""
    data, bindir = root / "data", pg_bin()
    shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)  # the local socket lives here: only its owner reaches it
    return [
        [
            str(bindir / "initdb"), f"--pgdata={data}", "--username=postgres",
            "--auth-local=trust", "--auth-host=reject", "--no-locale", "--encoding=UTF8",
            "--no-sync",
        ],
        ["sh", "-c", f"echo 'host knock knock {network} scram-sha-256' >> {data}/pg_hba.conf"],
    ]  # fmt: skip


def postgres_start(root: Path, address: str) -> list[str]:
    options = f"-c listen_addresses={address} -k {root} -c fsync=off -c synchronous_commit=off"
    return [
        str(pg_bin() / "pg_ctl"), "start", f"--pgdata={root / 'data'}",
        f"--log={root / 'server.log'}", f"--options={options}", "--wait", "--timeout=60",
    ]  # fmt: skip


def postgres_role(root: Path, password: str) -> tuple[list[str], str]:
    """psql and the SQL it reads on stdin (so the password is on no command line)."""
    quoted = password.replace("'", "''")
    sql = f"CREATE ROLE knock LOGIN PASSWORD '{quoted}';\nCREATE DATABASE knock OWNER knock;\n"
    psql = [str(pg_bin() / "psql"), "-h", str(root), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
    return [*psql, "-q", "-d", "postgres"], sql


def as_user(user: str, argv: list[str]) -> list[str]:
    """argv as `user` (PostgreSQL and ejabberd refuse root), keeping the open-files limit."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv]


# -- ejabberd -------------------------------------------------------------------------------

# Devices' accounts come from the operator's provisioning: here every password is the hex
# HMAC-SHA256 of the username under one secret (`knock sim --xmpp-password-secret`), checked by
# ejabberd's external-authentication protocol (2-byte length, "auth:user:server:password",
# answered by 2-byte length 2 and 2-byte 1 or 0), so no account has to be registered first.
_EXTAUTH: Final = """\
#!/usr/bin/python3
import hashlib, hmac, struct, sys
SECRET = open(sys.argv[1], "rb").read().strip()
def good(user, password):
    want = hmac.new(SECRET, user.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, password)
while True:
    head = sys.stdin.buffer.read(2)
    if len(head) < 2:
        break
    parts = sys.stdin.buffer.read(struct.unpack(">H", head)[0]).decode().split(":", 3)
    ok = parts[0] == "isuser" or (
        parts[0] == "auth" and len(parts) == 4 and good(parts[1], parts[3]))
    sys.stdout.buffer.write(struct.pack(">HH", 2, 1 if ok else 0))
    sys.stdout.buffer.flush()
"""

# One c2s listener with the server's certificate: what every private ejabberd here shares
# (bench/ejabberd.py adds in-band registration to it).
EJABBERD_C2S: Final = """\
hosts:
  - "{domain}"
loglevel: warning
hide_sensitive_log_data: true
certfiles:
  - "{root}/cert.pem"
  - "{root}/key.pem"
listen:
  - port: {port}
    ip: "{address}"
    module: ejabberd_c2s
"""
_EJABBERD_CONFIG: Final = (
    EJABBERD_C2S
    + """\
    starttls_required: true
    max_stanza_size: 65536
auth_method: external
extauth_program: "/usr/bin/python3 {root}/extauth.py {root}/secret"
auth_use_cache: false
modules: {{}}
"""
)


def ejabberd_libs() -> Path | None:
    """Where Debian puts ejabberd's Erlang application (/usr/lib/<multiarch>/ejabberd-*)."""
    found = sorted(Path("/usr/lib").glob("*/ejabberd-*/ebin/ejabberd.app"))
    return found[-1].parent.parent.parent if found else None


def ejabberd_prepare(root: Path, domain: str, address: str, port: int, secret: str) -> Path:
    """The server's folder, with a self-signed certificate for the domain; returns the
    certificate, which the ACS and the devices pin (external authentication offers only SASL
    PLAIN, so TLS is a must)."""
    (root / "spool").mkdir(parents=True)
    ensure_self_signed(root / "cert.pem", root / "key.pem", [domain])
    (root / "secret").write_text(secret)
    (root / "extauth.py").write_text(_EXTAUTH)
    config = _EJABBERD_CONFIG.format(domain=domain, address=address, port=port, root=root)
    (root / "ejabberd.yml").write_text(config)
    for path in [root, *root.rglob("*")]:
        shutil.chown(path, "ejabberd", "ejabberd")
    (root / "secret").chmod(0o600)
    (root / "key.pem").chmod(0o600)
    return root / "cert.pem"


def ejabberd_command(root: Path) -> tuple[list[str], dict[str, str]]:
    """Started straight through `erl` without a node name: no epmd, no distribution port."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "ERL_LIBS": str(ejabberd_libs()),
        "EJABBERD_CONFIG_PATH": str(root / "ejabberd.yml"),
        "EJABBERD_LOG_PATH": str(root / "ejabberd.log"),
        "ERL_CRASH_DUMP_BYTES": "0",
    }
    erl = ["erl", "-noinput", "-mnesia", "dir", f'"{root}/spool"', "-s", "ejabberd"]
    return as_user("ejabberd", erl), env


# -- HAProxy --------------------------------------------------------------------------------


def haproxy_command(config: Path = HAPROXY_CONFIG) -> list[str]:
    """Foreground (-db), the shipped configuration as it is; -W so SIGTERM stops it cleanly."""
    return ["haproxy", "-W", "-db", "-f", str(config)]
