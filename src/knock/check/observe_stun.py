"""What the device under test sends the ACS's STUN server, seen through the server's tap.

`stun_watch` yields a `StunWatch` that records every Binding Request from the device (known by
its STUN USERNAME, or by the address the server last saw it at) with the server's answer, each
as evidence. `StunWatch.move_next` makes the server answer the device's next request with another
MAPPED-ADDRESS than the one it saw, which is how a case makes a device believe its NAT binding
moved: the same works for a real CPE behind a real NAT, since the CPE can only know its mapping
from what STUN answers. The server still learns the true address, so connection requests keep
reaching the device.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

from knock.check.context import CheckContext
from knock.check.evidence import Kind
from knock.check.offers import require
from knock.hosts import authority, over
from knock.stun.attributes import CRB_VALUE, Address, AttributeType
from knock.stun.codec import Message, MessageType, StunError, binding_response, parse
from knock.stun.server import StunServer
from knock.stun.service import Handled


@dataclass(frozen=True, slots=True)
class Seen:
    """One Binding Request of the device and what went back."""

    at: float  # the server's clock
    source: Address
    request: Message
    answer: Message | None  # None: dropped

    @property
    def challenged(self) -> bool:
        """Answered 401 Unauthorized."""
        error = None if self.answer is None else self.answer.error
        return error is not None and error.code == 401


def describe(message: Message) -> str:
    """The attributes TR-111 cares about, in one line."""
    parts = [message.kind.name.replace("_", " ").title()]
    if message.username is not None:
        parts.append(f"USERNAME {message.username!r}")
    crb = message.first(AttributeType.CONNECTION_REQUEST_BINDING)
    if crb is not None:
        parts.append("CONNECTION-REQUEST-BINDING" + ("" if crb == CRB_VALUE else f" {crb!r}"))
    if message.binding_change:
        parts.append("BINDING-CHANGE")
    if message.integrity is not None:
        parts.append("MESSAGE-INTEGRITY")
    mapped = message.address(AttributeType.MAPPED_ADDRESS)
    if mapped is not None:
        parts.append(f"MAPPED-ADDRESS {mapped[0]}:{mapped[1]}")
    if message.error is not None:
        parts.append(f"ERROR-CODE {message.error.code}")
    return ", ".join(parts)


class StunWatch:
    def __init__(self, ctx: CheckContext, server: StunServer, username: str | None) -> None:
        self._ctx = ctx
        self._server = server
        self._username = username
        self.seen: list[Seen] = []
        self._arrived = asyncio.Event()
        self._move: Address | None = None
        self._password: str | None = None

    def tap(self, data: bytes, source: Address, handled: Handled, now: float) -> Handled:
        try:
            request = parse(data)
        except StunError:
            return handled
        if request.kind is not MessageType.BINDING_REQUEST or not self._is_device(request, source):
            return handled
        handled = self._moved(request, handled)
        answer = None
        if handled.reply is not None:
            with contextlib.suppress(StunError):
                answer = parse(handled.reply)
        self.seen.append(Seen(now, source, request, answer))
        self._ctx.evidence.add(
            Kind.RECEIVED, f"from {authority(*source)}{over(source[0])}: {describe(request)}"
        )
        self._ctx.evidence.add(
            Kind.SENT, "dropped" if answer is None else f"answered {describe(answer)}"
        )
        self._arrived.set()
        return handled

    def _is_device(self, request: Message, source: Address) -> bool:
        if self._username is not None and request.username == self._username:
            return True
        binding = self._server.bindings.get(self._username or "")
        return binding is not None and binding.address == source

    def move_next(self, to: Address, password: str | None) -> None:
        """Answer the device's next request that the server would answer with a Binding
        Response with MAPPED-ADDRESS *to* instead (signed with *password* when the request was)."""
        self._move, self._password = to, password

    def _moved(self, request: Message, handled: Handled) -> Handled:
        if self._move is None or handled.reply is None:
            return handled
        try:
            if parse(handled.reply).kind is not MessageType.BINDING_RESPONSE:
                return handled
        except StunError:
            return handled
        signed = self._password if request.integrity is not None else None
        reply = binding_response(request.txid, self._move, password=signed)
        self._ctx.note(f"the server answers this request with MAPPED-ADDRESS {self._move}")
        self._move = None
        return Handled(reply, handled.to, handled.events)

    async def first(self, matches: Callable[[Seen], bool], within: float) -> Seen | None:
        """The first request from now on for which *matches* holds, or None when none comes
        within *within* seconds."""
        count = len(self.seen)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while True:
                    found = next((seen for seen in self.seen[count:] if matches(seen)), None)
                    if found is not None:
                        return found
                    self._arrived.clear()
                    await self._arrived.wait()
        return None

    async def next(self, within: float, what: str = "Binding Request") -> Seen:
        """The next request seen from now on; fails the case after *within* seconds."""
        seen = await self.first(lambda _seen: True, within)
        if seen is None:
            self._ctx.fail(f"the device sent the STUN server no {what} within {within:g} s")
        return seen


NO_STUN_CREDENTIALS: Final = (
    "Knock set no STUN credentials on the device: it refused them in the first session (see the "
    "ACS log)"
)


@contextlib.asynccontextmanager
async def stun_watch(ctx: CheckContext) -> AsyncIterator[StunWatch]:
    """Watch the device's STUN traffic; skips the case when the ACS runs no STUN server or
    never gave the device STUN credentials."""
    server = ctx.acs.stun
    if server is None:
        ctx.skip("the ACS runs no STUN server (stun_enable is off)")
    await require(ctx, "STUN")
    target = await ctx.target()
    if target.stun_username is None:
        ctx.skip(NO_STUN_CREDENTIALS)
    watch = StunWatch(ctx, server, target.stun_username)
    with server.tapped(watch.tap):
        yield watch
