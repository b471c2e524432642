"""The dashboard in headless Chromium against a real ACS with simulated devices: log in with
the NBI's token, search, open a device, send it a connection request by HTTP and see the
outcome; the fleet view draws the histogram of the attempts on record. Screenshots are read
back and checked."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from nbi_support import StartNbi, inform

from browser import HEIGHT, WIDTH, Image, Page, chromium, plain_screenshot, read_png
from cpe.live_lab import lab
from knock.nbi.dashboard_stats import LATENCY_EDGES_MS
from knock.vocab import CrMethod, CrOutcome, TaskStatus
from serve_support import stun_outcome_is

TOKEN = "dashboard-s3cret"
BACKGROUND = (0xF5, 0xF6, 0xFA)  # --paper in style.css
DELIVERED_BOX = (0xE3, 0xF5, 0xEC)  # .cr-outcome.good
HTTP_BLUE = (0x2F, 0x6F, 0xDF)  # the http colour of the charts and the HTTP button
CHART_COLOURS = {"http": HTTP_BLUE, "udp": (0xE0, 0x80, 0x1E), "xmpp": (0x22, 0xA0, 0x6B)}
UPTIME = "Device.DeviceInfo.UpTime"
MANAGEMENT = "Device.ManagementServer."


async def screenshot(page: Page) -> Image:
    """The viewport, checked to be a real rendering: the page's size, and not blank."""
    image = read_png(await page.screenshot())
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    colours = image.colours(step=2)
    sampled = sum(colours.values())
    assert len(colours) > 30, "the screenshot has hardly any colours: is the page blank?"
    assert colours.get(BACKGROUND, 0) < 0.9 * sampled, "the screenshot is mostly background"
    return image


async def box_colour(page: Page, image: Image, selector: str) -> tuple[int, ...]:
    """The colour of the screenshot just inside the element's top left corner (its padding)."""
    box = await page.evaluate(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
        ".getBoundingClientRect(); return [Math.round(r.x), Math.round(r.y)]; })()"
    )
    return image.pixel(box[0] + 8, box[1] + 8)


def share(image: Image, colour: tuple[int, int, int]) -> float:
    colours = image.colours(step=2)
    return colours.get(colour, 0) / sum(colours.values())


async def device_facts(page: Page) -> dict[str, str]:
    """The device page's facts, label -> text."""
    labels = await page.evaluate(texts(".facts dt"))
    return dict(zip(labels, await page.evaluate(texts(".facts dd")), strict=True))


def texts(selector: str, attribute: str | None = None) -> str:
    """JavaScript: the text (or an attribute) of every element `selector` matches."""
    value = f"e.getAttribute({json.dumps(attribute)})" if attribute else "e.textContent"
    return f"[...document.querySelectorAll({json.dumps(selector)})].map((e) => {value})"


LAST_INFORM = (
    "[...document.querySelectorAll('.facts dt')]"
    ".find((d) => d.textContent === 'Last inform').nextElementSibling.textContent"
)


async def test_token_search_device_page_and_http_connection_request(tmp_path: Path) -> None:
    async with (
        lab(tmp_path, count=2, nbi_token=TOKEN) as running,
        chromium(tmp_path) as browser,
    ):
        for cpe in running.devices:
            await running.provisioned(cpe)
        await running.acs.xmpp_logins.written()  # each device's login, for its page
        first, second = (running.device_id(cpe) for cpe in running.devices)
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{running.acs.nbi_port}/")

        # The NBI has a token: the page asks for it, and keeps it for this tab only.
        await page.wait_for("!document.getElementById('login').hidden")
        await page.type("#token", "not-the-token", enter=True)
        await page.wait_for("document.body.innerText.includes('That token was refused')")
        await page.type("#token", TOKEN, enter=True)
        listed = await page.wait_for(
            f"(() => {{ const ids = {texts('#device-table tbody tr', 'data-device')};"
            " return ids.length === 2 ? ids : null; })()"
        )
        assert sorted(listed) == sorted([first, second])
        assert await page.evaluate("sessionStorage.getItem('knock.nbiToken')") == TOKEN
        assert await page.evaluate("document.getElementById('logout').hidden") is False

        # Search by serial number, in the NBI's query language.
        serial = second.rsplit("-", 1)[1]
        await page.type("#search", serial, enter=True)
        found = await page.wait_for(
            f"(() => {{ const ids = {texts('#device-table tbody tr', 'data-device')};"
            " return ids.length === 1 ? ids : null; })()"
        )
        assert found == [second]
        assert await page.evaluate("location.hash") == f"#/devices?q={serial}"

        # A task queued through the NBI: the page shows it waiting, then run in the session
        # the connection request starts.
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{running.acs.nbi_port}/devices/{second}/tasks",
                json={"name": "getParameterValues", "parameterNames": [UPTIME]},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as queued,
        ):
            assert queued.status == 202
            task_id = (await queued.json())["_id"]
            # The names under ManagementServer, with their access, in the same session.
            async with http.post(
                f"http://127.0.0.1:{running.acs.nbi_port}/devices/{second}/tasks",
                json={"name": "getParameterNames", "objectName": MANAGEMENT},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as named:
                assert named.status == 202
                names_id = (await named.json())["_id"]

        await stun_outcome_is(running.acs.store, second, "ok")
        await page.click("a.device-link")
        await page.wait_for(f"document.getElementById('device-id')?.textContent === {second!r}")
        facts = await device_facts(page)
        assert facts["Last STUN outcome"].startswith("ok from 127.0.0.1:")
        assert facts["XMPP set-up"].startswith("ok: Device.XMPP.Connection.1. (")
        paths = await page.wait_for(
            f"(() => {{ const p = {texts('#parameter-table td.path')}; "
            "return p.length ? p : null; })()"
        )
        assert "Device.ManagementServer.ConnectionRequestURL" in paths
        facts = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('dl.facts dt')]"
            ".map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))"
        )
        assert re.fullmatch(r"ok since .+ from 127\.0\.0\.1", facts["Last XMPP login"])
        shown = await page.evaluate(texts("#sessions tbody td:nth-child(3)"))
        stored_sessions = await running.acs.store.list_sessions(second)
        assert shown == [", ".join(s.events) for s in stored_sessions]
        assert any("0 BOOTSTRAP" in events for events in shown)
        assert await page.evaluate("document.getElementById('cr-history').tagName") == "P"
        tasks = await page.evaluate(texts("#tasks tbody tr", "data-task"))
        assert tasks == [task_id, names_id]
        assert await page.evaluate(texts("#tasks tbody td:nth-child(3)")) == ["queued"] * 2
        # Before the device listed any name, no access is claimed.
        assert set(await page.evaluate(texts("#parameter-table td.access"))) == {"?"}
        await page.evaluate("document.getElementById('cr-outcome').scrollIntoView()")
        before = await screenshot(page)
        assert await box_colour(page, before, "#cr-outcome") == BACKGROUND

        await page.click('button.cr[data-via="http"]')
        outcome = await page.wait_for(
            "(() => { const o = document.getElementById('cr-outcome').dataset;"
            " return o.outcome && o.outcome !== 'pending' ? [o.outcome, o.method] : null; })()"
        )
        assert outcome == ["delivered", "http"]
        [stored] = await running.acs.store.list_cr_attempts(second)
        assert (stored.method, stored.outcome) == (CrMethod.HTTP, CrOutcome.DELIVERED)
        assert await running.acs.store.list_cr_attempts(first) == []
        history = await page.wait_for(
            f"(() => {{ const r = {texts('#cr-history tbody tr', 'data-attempt')};"
            " return r.length ? r : null; })()"
        )
        assert history == [str(stored.id)]
        # One latency for one request: the banner's and the history's are the same figure.
        banner = await page.evaluate(
            "document.querySelector('#cr-outcome strong').nextSibling.textContent"
        )
        [cell] = await page.evaluate(texts("#cr-history tbody td:nth-child(4)"))
        assert banner == f" in {cell}", (banner, cell)
        # The header follows the session the request started, as the tables do.
        opened_at = facts["Last inform"].split(" (")[0]  # the time, not how long ago
        await page.wait_for(f"{LAST_INFORM}.split(' (')[0] !== {opened_at!r}")
        shown = await page.evaluate(texts("#sessions tbody td:nth-child(3)"))
        assert shown[0] == "6 CONNECTION REQUEST"
        # The task runs in that session, after the Inform; the page follows on its own.
        status = texts("#tasks tbody td:nth-child(3)")
        await page.wait_for(f"{status}.join() === 'done,done'")
        task = await running.acs.store.get_task(task_id)
        assert task is not None and task.status == TaskStatus.DONE
        # Access as the device reported it: rw and r under ManagementServer, where the
        # simulator's model has each; elsewhere, never asked, "?".
        access = dict(
            zip(
                await page.evaluate(texts("#parameter-table tbody tr", "data-path")),
                await page.evaluate(texts("#parameter-table td.access")),
                strict=True,
            )
        )
        model = running.devices[1].model
        listed = {path: a for path, a in access.items() if path.startswith(MANAGEMENT)}
        assert listed == {path: "rw" if model.definition(path).writable else "r" for path in listed}
        assert {"rw", "r"} <= set(listed.values())
        assert {a for path, a in access.items() if not path.startswith(MANAGEMENT)} == {"?"}
        assert access[UPTIME] == "?"

        await page.evaluate("document.getElementById('cr-outcome').scrollIntoView()")
        after = await screenshot(page)
        assert await box_colour(page, after, "#cr-outcome") == DELIVERED_BOX  # drawn, green
        # Auto: the ACS's order, XMPP first for a device that reported its JID.
        await page.click('button.cr[data-via="auto"]')
        outcome = await page.wait_for(
            "(() => { const o = document.getElementById('cr-outcome').dataset;"
            " return o.outcome && o.outcome !== 'pending' ? [o.outcome, o.method] : null; })()"
        )
        assert outcome == ["delivered", "xmpp"]
        latest = (await running.acs.store.list_cr_attempts(second))[0]
        assert (latest.method, latest.outcome) == (CrMethod.XMPP, CrOutcome.DELIVERED)
        history = await page.wait_for(
            f"(() => {{ const r = {texts('#cr-history tbody tr', 'data-attempt')};"
            " return r.length === 2 ? r : null; })()"
        )
        assert history == [str(latest.id), str(stored.id)]

        # The requests without the token and with the wrong one; no script error, nothing
        # refused by the page's content security policy.
        unauthorized = "Failed to load resource: the server responded with a status of 401"
        assert page.errors == [f"{unauthorized} (Unauthorized)"] * 2


async def test_fleet_view_draws_a_bar_per_method_and_latency(
    start_nbi: StartNbi, tmp_path: Path
) -> None:
    nbi = await start_nbi()  # no token, as the NBI runs on loopback by default
    store = nbi.store
    now = datetime.now(UTC)
    await store.record_inform(inform("001122-Router-SN1", now=now))
    latencies = {
        CrMethod.HTTP: [180.0, 220.0, 240.0, 1200.0],
        CrMethod.UDP: [40.0, 45.0],
        CrMethod.XMPP: [12.0],
    }
    for method, values in latencies.items():
        for ms in values:
            started = now - timedelta(minutes=20)
            attempt_id = await store.add_cr_attempt("001122-Router-SN1", method, started)
            ended = started + timedelta(milliseconds=ms)
            await store.finish_cr_attempt(attempt_id, CrOutcome.DELIVERED, ended, "ok")
    failed = await store.add_cr_attempt("001122-Router-SN1", CrMethod.HTTP, now)
    await store.finish_cr_attempt(failed, CrOutcome.UNREACHABLE, now, "refused")
    expected: dict[str, int] = {}
    for method, values in latencies.items():
        for ms in values:
            key = f"{method.value}/{bisect_right(LATENCY_EDGES_MS, ms)}"
            expected[key] = expected.get(key, 0) + 1

    async with chromium(tmp_path) as browser:
        page = await browser.new_page()
        await page.goto(f"{nbi.url}/#/fleet")
        bars = await page.wait_for(
            "(() => { const bars = [...document.querySelectorAll('#latency-histogram rect.bar')];"
            " return bars.length ? bars.map((b) => [b.dataset.method + '/' + b.dataset.bin,"
            " Number(b.dataset.count), b.getBBox().height]) : null; })()"
        )
        assert {key: count for key, count, _ in bars} == expected
        # Heights in proportion to the counts: pixels per request the same for every bar.
        per_request = {round(height / count, 6) for _, count, height in bars}
        assert len(per_request) == 1 and per_request.pop() > 10
        assert await page.evaluate("document.getElementById('login').hidden") is True

        # The delivered share: one point per method in the slice of 20 minutes ago, and for
        # http a second in the last slice, where its one attempt failed (0 %). Nothing came
        # in the hour's first 38 minutes: the 30 slices of 44 s run from the twentieth of two
        # minutes to now, not all data squeezed into the last third.
        points = await page.evaluate(
            "[...document.querySelectorAll('#success-rate circle.point')]"
            ".map((c) => c.dataset.method + '/' + c.dataset.slice)"
        )
        # Two minutes in, less the time from the attempts to the page's request: the third
        # slice, or the second for a page that took its time on a busy machine.
        (early,) = {point.split("/")[1] for point in points} - {"29"}
        assert early in ("1", "2"), points
        expected_points = ["http/29", *(f"{m}/{early}" for m in ("http", "udp", "xmpp"))]
        assert sorted(points) == sorted(expected_points)
        assert await page.evaluate("document.getElementById('share-heading').textContent") == (
            "Delivered share over time (slices of 44 s, from the first request in the window "
            "to now)"
        )
        totals = await page.evaluate(texts("#cr-totals tbody tr[data-method='http'] td"))
        assert totals[1:4] == ["5", "4", "80 %"]

        image = await screenshot(page)
        assert share(image, HTTP_BLUE) > 0.001  # the http bars

        # All three delivered every request of the early slice: their points lie on each
        # other, and each still shows in the pixels there; the legend gives each share.
        await page.evaluate("document.getElementById('success-rate').scrollIntoView()")
        centre = await page.evaluate(
            f"(() => {{ const r = document.querySelector('#success-rate circle.point"
            f'[data-slice="{early}"]\').getBoundingClientRect();'
            " return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)]; })()"
        )
        image = await screenshot(page)
        around = [
            image.pixel(centre[0] + dx, centre[1] + dy)
            for dx in range(-12, 13)
            for dy in range(-12, 13)
        ]
        for method, colour in CHART_COLOURS.items():
            assert colour in around, f"{method}'s point is hidden by another method's"
        legend = await page.evaluate(texts("#success-rate .legend text"))
        assert legend == ["HTTP 80 %", "UDP 100 %", "XMPP 100 %"]
        assert page.errors == []


async def test_an_ipv6_device_page_links_its_bracketed_url(tmp_path: Path) -> None:
    v6 = {"cwmp_host": "::1", "stun_host": "::1", "xmpp_host": "::1"}
    async with lab(tmp_path, cr_host="::1", **v6) as running, chromium(tmp_path) as browser:
        [cpe] = running.devices
        await running.provisioned(cpe)
        device_id = running.device_id(cpe)
        await stun_outcome_is(running.acs.store, device_id, "ok")
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{running.acs.nbi_port}/#/device/{device_id}")
        href = await page.wait_for("document.getElementById('cr-url')?.getAttribute('href')")
        assert href == cpe.model.get("Device.ManagementServer.ConnectionRequestURL")
        assert href.startswith("http://[::1]:")
        facts = await device_facts(page)
        assert facts["Last STUN outcome"].startswith("ok from [::1]:")
        assert facts["UDP connection request address"].startswith("[::1]:")


async def test_the_device_page_upgrades_firmware_from_the_stored_images(tmp_path: Path) -> None:
    image = hashlib.sha256(b"image").digest() * 4096  # 128 KiB
    async with (
        lab(tmp_path, count=1, nbi_token=TOKEN) as running,
        chromium(tmp_path) as browser,
    ):
        [cpe] = running.devices
        await running.provisioned(cpe)
        device = running.device_id(cpe)
        nbi = f"http://127.0.0.1:{running.acs.nbi_port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            for name, headers in [
                ("fw-2.0.bin", {"fileType": "1 Firmware Upgrade Image", "version": "2.0"}),
                ("other.bin", {"fileType": "1 Firmware Upgrade Image", "productClass": "Other"}),
                ("config.xml", {"fileType": "3 Vendor Configuration File"}),
            ]:
                async with http.put(f"{nbi}/files/{name}", data=image, headers=headers) as r:
                    assert r.status == 201
        page = await browser.new_page()
        await page.goto(f"{nbi}/")
        await page.wait_for("!document.getElementById('login').hidden")
        await page.type("#token", TOKEN, enter=True)
        await page.wait_for("document.querySelector('a.device-link') !== null")
        await page.click("a.device-link")
        # Only the firmware images made for this device are offered.
        offered = await page.wait_for(
            f"(() => {{ const o = {texts('#fw-file option', 'value')}; "
            "return o.length ? o : null; })()"
        )
        assert offered == ["fw-2.0.bin"]
        await page.click("#fw-upgrade")
        outcome = await page.wait_for(
            "(() => { const o = document.getElementById('fw-outcome').dataset;"
            " return o.outcome && o.outcome !== 'pending' ? [o.outcome, o.task] : null; })()"
        )
        assert outcome[0] == "accepted"
        task_id = outcome[1]
        with running.acs.hub.subscribe(device) as announcements:
            async with asyncio.timeout(20):  # the transfer, reported in the next session
                while True:
                    task = await running.acs.store.get_task(task_id)
                    assert task is not None
                    if "transferComplete" in (task.result or {}):
                        break
                    await announcements.next()
        [received] = cpe.received
        assert (received.size, received.sha256) == (len(image), hashlib.sha256(image).hexdigest())
        # No script error; at most the refusal of the page's first request, made before the
        # token was typed.
        unauthorized = "Failed to load resource: the server responded with a status of 401"
        assert all(error.startswith(unauthorized) for error in page.errors), page.errors


async def test_the_device_list_gives_the_total_and_pages_and_the_fleet_why_not_delivered(
    start_nbi: StartNbi, tmp_path: Path
) -> None:
    nbi = await start_nbi()
    store = nbi.store
    now = datetime.now(UTC)
    # 201 devices, SN000 the latest to inform: one more than a page holds.
    for n in range(201):
        await store.record_inform(
            inform(f"001122-Router-SN{n:03d}", now=now - timedelta(seconds=n))
        )
    for outcome in (CrOutcome.TIMEOUT, CrOutcome.TIMEOUT, CrOutcome.UNREACHABLE):
        started = now - timedelta(minutes=5)
        attempt_id = await store.add_cr_attempt("001122-Router-SN000", CrMethod.UDP, started)
        await store.finish_cr_attempt(attempt_id, outcome, started, "none came")

    async with chromium(tmp_path) as browser:
        page = await browser.new_page()
        await page.goto(f"{nbi.url}/")
        counted = await page.wait_for(
            "document.getElementById('device-count')?.textContent || null"
        )
        assert counted == "1\N{EN DASH}200 of 201 devices, latest inform first"
        rows = await page.evaluate(texts("#device-table tbody tr", "data-device"))
        assert (len(rows), rows[0], rows[-1]) == (200, "001122-Router-SN000", "001122-Router-SN199")
        assert await page.evaluate("document.getElementById('page-newer')") is None
        await page.click("#page-older")
        older = await page.wait_for(
            f"(() => {{ const ids = {texts('#device-table tbody tr', 'data-device')};"
            " return ids.length === 1 ? ids : null; })()"
        )
        assert older == ["001122-Router-SN200"]
        assert await page.evaluate("location.hash") == "#/devices?page=2"
        assert (
            await page.evaluate("document.getElementById('device-count').textContent")
            == "201\N{EN DASH}201 of 201 devices, latest inform first"
        )

        # The fleet view says why UDP requests were not delivered, most frequent first.
        await page.goto(f"{nbi.url}/#/fleet")
        why = await page.wait_for(
            "document.querySelector(\"#cr-totals tr[data-method='udp'] td.failed\")"
            "?.textContent || null"
        )
        assert why == f"{CrOutcome.TIMEOUT} 2, {CrOutcome.UNREACHABLE} 1"
        assert page.errors == []


async def test_a_plain_screenshot_shows_each_view_not_a_wait(
    start_nbi: StartNbi, tmp_path: Path
) -> None:
    """`chromium --headless --screenshot` takes the page at its load event, before the NBI
    answers: the view's heading and controls are drawn by then (the Search button, the chosen
    window, the link back to the list, in the accent colour), not only a "Loading" line."""
    nbi = await start_nbi()
    await nbi.store.record_inform(inform("001122-Router-SN1", now=datetime.now(UTC)))
    for n, view in enumerate(("", "#/fleet", "#/device/001122-Router-SN1")):
        image = read_png(await plain_screenshot(tmp_path / str(n), f"{nbi.url}/{view}"))
        assert (image.width, image.height) == (WIDTH, HEIGHT)
        colours = image.colours(step=2)
        assert len(colours) > 30, f"{view or '/'}: hardly any colours, is the page blank?"
        # The accent colour: a bare "Loading" page has it only in the footer's link (0.003 %).
        assert share(image, HTTP_BLUE) > 0.0002, f"{view or '/'}: the view's controls are missing"
