"""Headless Chromium (Debian's `chromium`) driven over the Chrome DevTools Protocol: a websocket
spoken with aiohttp, nothing downloaded. Also a PNG reader (zlib, no imaging library), so that
tests can check the screenshots they take.

Chromium is started with a throwaway profile and the flags that keep it off the internet
(../shared LAB-NOTES): no background networking, no component updates, and every host name but
loopback resolving to nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

WAIT = 15.0  # seconds a page may take to reach an awaited state before the test fails
WIDTH, HEIGHT = 1280, 800

FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI; the sandbox refuses root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--hide-scrollbars",
    "--mute-audio",
    "--force-device-scale-factor=1",
    "--remote-debugging-port=0",
)


class CdpError(Exception):
    """Chromium answered a DevTools command with an error, or a page script threw."""


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "no chromium on PATH: install Debian's package (apt-get install chromium), as "
            "scripts/prepare-test-host.sh does"
        )
    return found


class Browser:
    """One Chromium process and its DevTools websocket; commands are matched to answers by id."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
    ) -> None:
        self.process = process
        self._http = http
        self._ws = ws
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        answer = asyncio.get_running_loop().create_future()
        self._answers[message["id"]] = answer
        await self._ws.send_str(json.dumps(message))
        async with asyncio.timeout(WAIT):
            reply = await answer
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read(self) -> None:
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            if "id" in message:
                answer = self._answers.pop(message["id"], None)
                if answer is not None and not answer.done():
                    answer.set_result(message)
            elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                page.on_event(message["method"], message.get("params", {}))
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(CdpError("chromium closed its DevTools connection"))

    async def new_page(self, width: int = WIDTH, height: int = HEIGHT) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"], width, height)
        self._pages[page.session] = page
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page

    async def close(self) -> None:
        with contextlib.suppress(CdpError, ConnectionError, TimeoutError):
            await self.send("Browser.close")
        await self._ws.close()
        await self._http.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        try:
            async with asyncio.timeout(WAIT):
                await self.process.wait()
        except TimeoutError:
            # Its own process group (start_new_session): the renderers go with it.
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()


async def plain_screenshot(folder: Path, url: str) -> bytes:
    """The page as `chromium --headless --screenshot URL` takes it, the way a person or a script
    would: at the load event, no DevTools, no --virtual-time-budget."""
    profile = folder / "chromium-plain-profile"
    profile.mkdir(parents=True)
    out = folder / "plain.png"
    process = await asyncio.create_subprocess_exec(
        chromium_path(),
        *(flag for flag in FLAGS if not flag.startswith("--remote-debugging")),
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={out}",
        url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot:\n{stderr.decode(errors='replace')}")
    return out.read_bytes()


@contextlib.asynccontextmanager
async def chromium(folder: Path) -> AsyncIterator[Browser]:
    """Start headless Chromium with a fresh profile under `folder`; closed on exit."""
    profile = folder / "chromium-profile"
    profile.mkdir(parents=True)
    process = await asyncio.create_subprocess_exec(
        chromium_path(),
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    # Chromium keeps writing to stderr; reading it keeps the pipe from filling up.
    stderr: list[bytes] = []
    drain = asyncio.create_task(_collect(process.stderr, stderr))
    try:
        port, path = await _devtools_address(profile / "DevToolsActivePort", process, stderr)
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        drain.cancel()
        raise
    browser = Browser(process, http, ws)
    try:
        yield browser
    finally:
        await browser.close()
        drain.cancel()


async def _collect(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    while line := await stream.readline():
        into.append(line)


async def _devtools_address(
    file: Path, process: asyncio.subprocess.Process, stderr: list[bytes]
) -> tuple[int, str]:
    """The port and browser path Chromium writes once DevTools listens (port 0: any free one)."""
    async with asyncio.timeout(30):
        while True:
            if process.returncode is not None:
                tail = b"".join(stderr[-20:]).decode(errors="replace")
                raise RuntimeError(f"chromium exited with {process.returncode}:\n{tail}")
            address = _read_address(file)
            if address is not None:
                return address
            await asyncio.sleep(0.05)


def _read_address(file: Path) -> tuple[int, str] | None:
    lines = file.read_text().split("\n") if file.exists() else []
    return (int(lines[0]), lines[1]) if len(lines) >= 2 and lines[1] else None


@dataclass
class Page:
    """One tab. Script errors, console errors and refused loads (the page's CSP) are kept in
    `errors`, so that a test can assert there were none."""

    browser: Browser
    session: str
    width: int
    height: int
    errors: list[str] = field(default_factory=list)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details["text"])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])

    async def goto(self, url: str) -> None:
        answer = await self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise CdpError(f"cannot open {url}: {answer['errorText']}")
        await self.wait_for("document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        answer = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            raise CdpError(f"{expression!r} threw: {text}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str) -> Any:
        """Wait until the expression is truthy in the page; returns its value."""
        try:
            async with asyncio.timeout(WAIT):
                # The page's state is only seen by asking it; nothing announces it here.
                while not (value := await self.evaluate(expression)):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                return value
        except TimeoutError:
            text = await self.evaluate("document.body ? document.body.innerText : ''")
            raise AssertionError(
                f"the page never reached {expression!r}; it shows:\n{str(text)[:2000]}"
            ) from None

    async def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element, as a user's would be."""
        box = await self.wait_for(
            f"""(() => {{
                const node = document.querySelector({json.dumps(selector)});
                if (!node) return null;
                node.scrollIntoView({{block: "center"}});
                const r = node.getBoundingClientRect();
                return r.width && r.height ? {{x: r.x + r.width / 2, y: r.y + r.height / 2}} : null;
            }})()"""
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )

    async def type(self, selector: str, text: str, *, enter: bool = False) -> None:
        """Focus the field, type `text` as keyboard input, and optionally press Enter."""
        await self.click(selector)
        await self.send("Input.insertText", {"text": text})
        if enter:
            key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
            await self.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": "\r", **key})
            await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **key})

    async def screenshot(self) -> bytes:
        """The viewport as PNG bytes."""
        answer = await self.send("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(answer["data"])


# --- PNG --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int  # 3 (RGB) or 4 (RGBA), 8 bits each
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        start = x * self.channels
        return tuple(self.rows[y][start : start + 3])

    def colours(self, step: int = 1) -> dict[tuple[int, ...], int]:
        """How many sampled pixels (every `step`-th row and column) have each RGB colour."""
        counts: dict[tuple[int, ...], int] = {}
        for y in range(0, self.height, step):
            row = self.rows[y]
            for x in range(0, self.width, step):
                start = x * self.channels
                colour = tuple(row[start : start + 3])
                counts[colour] = counts.get(colour, 0) + 1
        return counts


def read_png(data: bytes) -> Image:
    """Decode an 8-bit RGB or RGBA PNG, undoing the scanline filters (PNG spec §9)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG: the signature is missing")
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if (
            zlib.crc32(kind + body)
            != struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        ):
            raise ValueError(f"PNG chunk {kind!r} has a bad CRC")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise ValueError(f"only 8-bit RGB/RGBA, non-interlaced PNGs: {depth=} {colour_type=}")
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line))
        previous = rows[-1]
    return Image(width, height, channels, rows)


def _unfilter(kind: int, line: bytearray, up: bytes, bpp: int) -> None:
    n = len(line)
    if kind == 0:
        return
    if kind == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(n):
            line[i] = (line[i] + up[i]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + up[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = up[i]
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + predictor) & 0xFF
    else:
        raise ValueError(f"PNG filter type {kind} does not exist")
