"""A careless department for the fairness test (issue 17), in a process of its own so that the test's own
measurements are not slowed by it: `python -m tests.support.flood URL TOKEN SECONDS CONNECTIONS BODIES.json` posts
batches of 5 records over CONNECTIONS connections as fast as they are answered, ignoring Retry-After, then prints
{"statuses": {code: count}, "retry_after": [...]} as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

import httpx


async def flood(url: str, token: str, seconds: float, connections: int, bodies: list[dict]) -> dict:
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    errors: Counter[str] = Counter()

    async def connection(client: httpx.AsyncClient, n: int, stop: float) -> None:
        while time.monotonic() < stop:
            batch = bodies[(n * 5) % (len(bodies) - 5) :][:5]
            try:
                r = await client.post(
                    "/v1/records/penalty", json=batch, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            statuses[r.status_code] += 1
            if r.status_code == 429:
                retry_after.add(r.headers.get("retry-after", ""))

    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(connection(client, n, stop) for n in range(connections)))
    return {"statuses": dict(statuses), "retry_after": sorted(retry_after), "errors": dict(errors)}


if __name__ == "__main__":
    url, token, seconds, connections, bodies = sys.argv[1:6]
    result = asyncio.run(
        flood(url, token, float(seconds), int(connections), json.loads(Path(bodies).read_text()))
    )
    print(json.dumps(result))
