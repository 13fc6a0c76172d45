"""Deliveries to one merchant origin are limited in flight; other origins never wait."""

import asyncio

from payhook.effects.context import OriginGates


async def test_one_origin_is_limited_and_others_do_not_wait():
    gates = OriginGates(limit=2)
    in_flight: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    release = asyncio.Event()

    async def request(name: str, url: str) -> None:
        async with gates.hold(url):
            in_flight[name] += 1
            most[name] = max(most[name], in_flight[name])
            await release.wait()
            in_flight[name] -= 1

    slow = [asyncio.create_task(request("a", f"https://user:pw@shop.example:8443/hook/{n}"))
            for n in range(5)]
    await asyncio.sleep(0.01)
    assert in_flight["a"] == 2  # the rest of that origin waits its turn
    other = asyncio.create_task(request("b", "https://other.example/hook"))
    await asyncio.sleep(0.01)
    assert in_flight["b"] == 1  # another origin goes straight through
    release.set()
    await asyncio.gather(*slow, other)
    assert most == {"a": 2, "b": 1}
    assert gates._gates == {}  # nothing kept once no request is in flight
