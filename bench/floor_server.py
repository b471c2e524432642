"""The floor of bench/informs.py: bare aiohttp answering every Inform with a fixed InformResponse
and the empty POST with 204, nothing parsed, nothing stored. What a CWMP session costs a Python
HTTP server before any ACS work; the ACS's figures are read as ratios against it.
Run by bench/informs.py as `python bench/floor_server.py PORT`; prints "ready" once it listens.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

_INFORM_RESPONSE = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0">'
    b'<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header>'
    b"<soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>"
    b"</soap-env:Body></soap-env:Envelope>"
)


async def cwmp(request: web.Request) -> web.Response:
    if await request.read():
        response = web.Response(body=_INFORM_RESPONSE, content_type="text/xml")
        # As an ACS does, so that the client's session carries a cookie like Knock's.
        response.set_cookie("knock_session", "floor", httponly=True)
        return response
    return web.Response(status=204)


async def serve(port: int) -> None:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/", cwmp)
    # Loopback only, for the benchmark's run; idle connections close as knock serve's do.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=30)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
