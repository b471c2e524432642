"""`knock lab nat` and `knock lab hosts`: help, --exec, and Ctrl-C tearing a lab down."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

from lab_support import REPLY_TIMEOUT
from typer.testing import CliRunner

from knock.cli import app
from knock.lab import netns

KNOCK = [sys.executable, "-m", "knock"]


def _read_until(process: subprocess.Popen[bytes], marker: str, timeout: float) -> str:
    """What the process printed up to and including `marker`. Reads the pipe's descriptor, not a
    buffered file: after readline() the file may hold the next lines while select() on the
    descriptor says nothing is left, so a marker already printed was waited for in vain."""
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in output:
        left = deadline - time.monotonic()
        readable, _, _ = select.select([process.stdout.fileno()], [], [], max(left, 0))
        assert readable, f"no {marker!r} within {timeout} s: {output.decode()}"
        chunk = os.read(process.stdout.fileno(), 65536)
        assert chunk, f"ended before {marker!r}: {output.decode()}"
        output += chunk
    return output.decode()


def test_help_says_what_the_lab_is_for() -> None:
    result = CliRunner().invoke(app, ["lab", "nat", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for words in ("address-and-port-restricted", "HTTP connection request", "XMPP", "--exec"):
        assert words in result.output


def test_exec_needs_a_known_namespace_and_a_command() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["lab", "nat", "--exec", "wan", "--", "true"])
    assert result.exit_code == 2 and "pub, nat or lan" in result.output
    result = runner.invoke(app, ["lab", "nat", "--exec", "lan"])
    assert result.exit_code == 2 and "go together" in result.output


def test_exec_runs_the_command_in_the_namespace_and_passes_its_status_on() -> None:
    show = "import socket, sys; print(socket.gethostbyname('localhost')); sys.exit(3)"
    route = [*KNOCK, "lab", "nat", "--exec", "lan", "--", "cat", "/proc/net/route"]
    done = subprocess.run(route, capture_output=True, text=True, timeout=30, check=True)
    assert "eth0\t00000000\t016433C6" in done.stdout  # default (0.0.0.0) via 198.51.100.1 (LE hex)
    assert "NAT lab" in done.stderr and "198.51.100.10/24" in done.stderr  # the table
    done = subprocess.run(
        [*KNOCK, "lab", "nat", "-q", "--exec", "pub", "--", sys.executable, "-c", show],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "127.0.0.1\n", "")


def test_ctrl_c_tears_the_lab_down() -> None:
    lab = subprocess.Popen([*KNOCK, "lab", "nat"], stdout=subprocess.PIPE)
    try:
        output = _read_until(lab, "Ctrl-C", 60)
        tag = output.split("ip netns exec ", 1)[1].split()[0].removesuffix("-pub")
        assert f"{tag}-lan" in netns.names()
        lab.send_signal(signal.SIGINT)
        assert lab.wait(REPLY_TIMEOUT) == 0
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    assert [name for name in netns.names() if name.startswith(tag)] == []


def test_ctrl_c_tears_the_hosts_lab_down() -> None:
    """`knock lab hosts`: every machine built, then nothing left after Ctrl-C."""
    lab = subprocess.Popen([*KNOCK, "lab", "hosts", "-q"], stdout=subprocess.PIPE)
    try:
        # About 30 s when the machine is idle; CI may be building other labs meanwhile.
        output = _read_until(lab, "Ctrl-C", 240)
        tag = output.split("ip netns exec ", 1)[1].split()[0].removesuffix("-acs1")
        machines = ("db", "acs1", "acs2", "xmpp", "pub", "nat", "lan")
        assert sorted(n for n in netns.names() if n.startswith(f"{tag}-")) == sorted(
            f"{tag}-{m}" for m in machines
        )
        assert "bearer token in" in output
        lab.send_signal(signal.SIGINT)
        assert lab.wait(120) == 0  # stopping PostgreSQL, ejabberd and four ACS workers
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    assert [name for name in netns.names() if name.startswith(tag)] == []
