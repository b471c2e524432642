"""A UDP probe run as its own process inside a lab namespace, as a simulated CPE would be:

    python udp_probe.py BIND_HOST TARGET_HOST TARGET_PORT

sends "probe" to the target from a fresh port on BIND_HOST, waits (bounded) for one reply and
prints JSON: {"local": [host, port], "reply": "...", "from": [host, port]} ("reply": null when
none came)."""

from __future__ import annotations

import json
import socket
import sys

REPLY_TIMEOUT = 5.0


def main(bind_host: str, target_host: str, target_port: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((bind_host, 0))
        sock.settimeout(REPLY_TIMEOUT)
        sock.sendto(b"probe", (target_host, int(target_port)))
        print(json.dumps({"local": sock.getsockname()}), flush=True)
        try:
            data, source = sock.recvfrom(2048)
        except TimeoutError:
            print(json.dumps({"reply": None}), flush=True)
            return
        print(json.dumps({"reply": data.decode(), "from": source}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
