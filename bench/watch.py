"""``make bench-watch``: what the chain watch costs the node per new block with 1, 1,000 and
10,000 open sessions (issue 11) — it must not grow with the number of sessions.

Real and local: anvil (``tests/anvil.py``) behind the counting proxy, a fresh PostgreSQL
database with payhook's migrations, open sessions seeded by SQL — each size in ``eth`` and as
many again in a deployed ERC-20 token, each with a deposit address of its own. For each size
the bench pays the last ``eth`` and the last token session, mines one block, runs one watcher
tick and counts the node's calls by method; then an idle tick (no new block). Both payments
must be found every time.

    .venv/bin/python -m bench.watch [--sizes 1,1000,10000] [--json] [--admin-url URL]

Exit status: 0 when every size costs the same calls and every payment is found; 1 otherwise.
"""

import argparse
import json
import sys
import time
from typing import Any

import asyncpg

from bench.common import (
    ADMIN_TOKEN,
    SECRET_KEY,
    add_admin_url,
    create_database,
    database_url,
    drop_database,
    log,
    run_bench,
)
from payhook.config import load_settings
from payhook.db.engine import create_engine
from payhook.effects.chain import Chain
from payhook.effects.watch import Watcher
from tests.anvil import CHAIN_ID, Anvil, CountingProxy, new_account, transfer_call
from tests.wallet import XPUB

SEED = """
INSERT INTO checkout_sessions (id, merchant_id, mode, status, amount, currency, metadata,
                               created_at, updated_at, expires_at, deposit_address)
SELECT 'cs_watch' || lpad(g::text, 20, '0'), 'mer_bench', 'test', 'created', 1000,
       CASE WHEN g % 2 = 0 THEN 'eth' ELSE 'usdt' END, '{}', now(), now(),
       now() + interval '1 day', '0x' || lpad(to_hex(g + 1), 40, '0')
FROM generate_series($1::int, $2::int - 1) AS g
"""


def address(index: int) -> str:
    """The deposit address SEED gives session ``index`` (even: eth, odd: usdt)."""
    return "0x" + f"{index + 1:x}".rjust(40, "0")


async def seed(url: str, start: int, stop: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SEED, start, stop)
        await conn.execute("ANALYZE checkout_sessions")
    finally:
        await conn.close()


async def measure(sizes: list[int], admin_url: str, name: str) -> list[dict[str, Any]]:
    anvil = Anvil.start()
    proxy = await CountingProxy(anvil.node.url).start()
    try:
        node = anvil.node
        payer = new_account(node)
        token = node.deploy_token(payer, "USDT", 10**15)
        settings = load_settings(
            database_url=database_url(admin_url, name, "postgresql+asyncpg"),
            secret_key=SECRET_KEY, admin_token=ADMIN_TOKEN, web3_rpc_url=proxy.url,
            web3_chain_id=CHAIN_ID, web3_xpub=XPUB,
            web3_tokens=f"usdt:{token}:6")
        engine = create_engine(settings.database_url, pool_size=2)
        watcher = Watcher(engine, Chain.connect(proxy.url), settings)
        try:
            await watcher.tick()  # places the cursor
            rows, seeded = [], 0
            for size in sizes:
                await seed(database_url(admin_url, name), seeded, 2 * size)
                seeded = 2 * size
                node.send(payer, address(seeded - 2), 10**15)  # the last eth session
                node.send(payer, token, data=transfer_call(address(seeded - 1), 1000),
                          gas=100_000)
                node.mine_at()
                proxy.calls.clear()
                started = time.perf_counter()
                tick = await watcher.tick()
                seconds = time.perf_counter() - started
                calls = dict(proxy.calls)
                proxy.calls.clear()
                await watcher.tick()
                rows.append({"open_sessions_per_asset": size, "calls_per_block": calls,
                             "calls_per_idle_tick": dict(proxy.calls), "found": tick.found,
                             "tick_ms": round(seconds * 1000, 1)})
        finally:
            await watcher.chain.close()
            await engine.dispose()
        return rows
    finally:
        await proxy.stop()
        anvil.stop()


async def bench(args: argparse.Namespace) -> int:
    sizes = [int(size) for size in args.sizes.split(",")]
    name = "payhook_bench_watch"
    await create_database(args.admin_url, name, sessions=0)
    conn = await asyncpg.connect(database_url(args.admin_url, name))
    try:
        await conn.execute("INSERT INTO merchants (id, name, created_at) "
                           "VALUES ('mer_bench', 'bench', now())")
    finally:
        await conn.close()
    try:
        rows = await measure(sizes, args.admin_url, name)
    finally:
        await drop_database(args.admin_url, name)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['open_sessions_per_asset']:>6} open sessions per asset: "
                  f"{sum(row['calls_per_block'].values())} calls per new block "
                  f"{row['calls_per_block']}, {sum(row['calls_per_idle_tick'].values())} per "
                  f"idle tick, {row['found']} of 2 payments found, tick {row['tick_ms']} ms")
    same = len({json.dumps(row["calls_per_block"], sort_keys=True) for row in rows}) == 1
    found = all(row["found"] == 2 for row in rows)
    if not (same and found):
        log("FAILED: " + ("calls grow with the sessions" if not same else "a payment was missed"))
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,1000,10000")
    parser.add_argument("--json", action="store_true")
    add_admin_url(parser)
    args = parser.parse_args()
    return run_bench(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
