"""A lab comes up, goes away without a trace (however its `with` block ends), leaves the host
alone, and the leftovers of a killed run are cleaned up. Each test builds labs of its own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import REPLY_TIMEOUT

from knock.lab import LabError, NatLab, clean_stale, netns, stale, topology

# A run that builds a lab, says which, and waits to be killed.
KILLED_RUN = (
    "from knock.lab import NatLab\nlab = NatLab(); lab.build(); print(lab.tag, flush=True); input()"
)


def host_state() -> dict[str, str]:
    """What the lab must never change on the host: its links, its nftables rules, forwarding."""
    ip, nft = netns.tool_paths()["ip"], netns.tool_paths()["nft"]
    return {
        "links": netns.command([ip, "-o", "link", "show"]),
        "nft": netns.command([nft, "list", "ruleset"]),
        "forwarding": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }


def netns_inodes(lab: NatLab) -> set[int]:
    return {os.stat(netns.NETNS_DIR / lab.namespace(role)).st_ino for role in topology.ROLES}


def holders(inodes: set[int]) -> list[str]:
    """Processes (or threads) still in one of these network namespaces."""
    found = []
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*"):
        try:
            if os.stat(task / "ns" / "net").st_ino in inodes:
                found.append(task.name)
        except OSError:
            continue  # exited while we looked
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init, which may be slow to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def assert_gone(lab: NatLab, inodes: set[int]) -> None:
    left = [name for name in netns.names() if name.startswith(lab.tag)]
    assert left == [], f"namespaces left behind: {left}"
    assert holders(inodes) == [], "something still runs in the lab's namespaces"
    assert not (stale.LOCK_DIR / f"{lab.tag}.lock").exists()


@pytest.fixture
def host_untouched() -> Iterator[None]:
    before = host_state()
    yield
    assert host_state() == before


def test_a_lab_comes_up_and_goes_away(host_untouched: None) -> None:
    with NatLab() as lab:
        assert {lab.namespace(role) for role in topology.ROLES} <= set(netns.names())
        inodes = netns_inodes(lab)
        assert "knock_lab" in lab.run("nat", [lab.tools["nft"], "list", "tables"]).stdout
        child = lab.python("pub", "-c", "input()", stdin=subprocess.PIPE)
        shell = ["sh", "-c", "sleep 60 & echo $!; wait"]  # the sleep is not ours: lab stops it
        grandchild = lab.popen("lan", shell, stdout=subprocess.PIPE)
        assert grandchild.stdout is not None
        sleeper = int(grandchild.stdout.readline())
    assert_gone(lab, inodes)  # the veths and the nft table went with the namespaces
    assert child.returncode is not None and grandchild.returncode is not None
    assert not running(sleeper)


def test_an_exception_in_the_block_still_tears_down(host_untouched: None) -> None:
    with pytest.raises(RuntimeError, match="test failure"), NatLab() as lab:
        inodes = netns_inodes(lab)
        raise RuntimeError("test failure")
    assert_gone(lab, inodes)


async def test_the_async_form_tears_down_too(host_untouched: None) -> None:
    async with NatLab() as lab:
        inodes = netns_inodes(lab)
        process = await lab.start("pub", ["sleep", "60"])
    assert_gone(lab, inodes)
    assert await process.wait() == -signal.SIGTERM


def test_a_failed_build_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, host_untouched: None
) -> None:
    monkeypatch.setattr(topology, "ruleset", lambda ports: "this is not nft\n")
    lab = NatLab()
    with pytest.raises(LabError, match="nft"):
        lab.build()
    assert [name for name in netns.names() if name.startswith(lab.tag)] == []
    assert not (stale.LOCK_DIR / f"{lab.tag}.lock").exists()


def test_two_labs_side_by_side_do_not_clash() -> None:
    with NatLab() as one, NatLab() as two:
        assert one.tag != two.tag and one.acs_address == two.acs_address
        removed = clean_stale()  # both owners are alive, so neither lab is stale
        assert not [name for name in removed if name.startswith((one.tag, two.tag))]
        for lab in (one, two):
            out = lab.run("lan", ["cat", "/proc/net/route"]).stdout
            assert "eth0" in out


def test_the_leftovers_of_a_killed_run_are_cleaned() -> None:
    with NatLab() as live:  # first, so its own build does not clean the killed run up
        run = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert run.stdout is not None
            tag = run.stdout.readline().strip()
            assert tag.startswith(topology.PREFIX)
        finally:
            run.kill()  # no teardown can run: the namespaces stay behind
            run.wait(REPLY_TIMEOUT)
        left = sorted(name for name in netns.names() if name.startswith(tag))
        assert len(left) == 3
        removed = clean_stale()  # another test run's may get there first: that is fine too
        assert [name for name in netns.names() if name.startswith(tag)] == []
        assert not [name for name in removed if name.startswith(live.tag)]
        assert live.namespace("pub") in netns.names()  # a live lab is not touched
    assert not (stale.LOCK_DIR / f"{tag}.lock").exists()


def test_without_root_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        NatLab().build()


def test_without_the_tools_the_error_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(LabError) as missing:
        NatLab().build()
    assert "conntrack, iproute2, nftables" in str(missing.value)
    assert "prepare-test-host.sh" in str(missing.value)
