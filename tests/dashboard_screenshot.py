"""Make the README's dashboard screenshots from a demo state: an in-process `knock serve`,
three simulated devices reachable by every method, a few connection requests by each, then
headless Chromium on the device page (after its HTTP button was clicked) and the fleet view.

    .venv/bin/python tests/dashboard_screenshot.py docs/img
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from browser import chromium, read_png
from cpe.live_lab import ALL_METHODS, lab, settled

ROUNDS = 3  # connection requests by each method to each device, for the fleet view's charts


async def take() -> dict[str, bytes]:
    """The screenshots by file name."""
    with tempfile.TemporaryDirectory() as folder:
        async with lab(Path(folder), count=3) as running, chromium(Path(folder)) as browser:
            for cpe in running.devices:
                await running.provisioned(cpe)
            for _ in range(ROUNDS):
                for cpe in running.devices:
                    for method in ALL_METHODS:
                        if cpe.in_session:
                            await settled(cpe)
                        await running.acs.dispatcher.reach(running.device_id(cpe), 5, method)
            cpe = running.devices[0]
            if cpe.in_session:
                await settled(cpe)
            base = f"http://127.0.0.1:{running.acs.nbi_port}/"
            page = await browser.new_page(1280, 900)
            await page.goto(f"{base}#/device/{running.device_id(cpe)}")
            await page.click('button.cr[data-via="http"]')
            await page.wait_for(
                "['delivered', 'error'].includes(document.getElementById('cr-outcome')"
                ".dataset.outcome) || document.getElementById('cr-outcome').classList"
                ".contains('bad')"
            )
            await page.evaluate("window.scrollTo(0, 0)")
            shots = {"dashboard.png": await page.screenshot()}
            await page.goto(f"{base}#/fleet?window=900")
            await page.wait_for("!!document.querySelector('#latency-histogram rect.bar')")
            shots["fleet.png"] = await page.screenshot()
    return shots


def main(out: Path) -> None:
    shots = asyncio.run(take())
    out.mkdir(parents=True, exist_ok=True)
    for name, png in shots.items():
        image = read_png(png)  # checks that it decodes
        (out / name).write_bytes(png)
        print(f"{out / name}: {image.width}x{image.height}, {len(png)} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
