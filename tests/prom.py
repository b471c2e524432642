"""Scrape a running server's `/metrics` over HTTP and read the exposition text."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from knock.server import Running

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(acs: Running, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{acs.nbi_port}/metrics", headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await r.text())


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value (a KeyError names the sample when the server did not show it)."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise KeyError(f"no sample {name}{labels} among {sorted({n for n, _ in samples})}")
    return samples[key]
