"""The worker watches the chain for payments to open sessions' deposit addresses, against a real
local node (anvil), on both databases.

Sessions get their deposit address by SQL (fresh random addresses); the watcher under test is
the real one, its node the real anvil (behind a counting proxy where calls are counted). What
is asserted is what the watcher does: the ``onchain.check`` rows it queues — the payload a Web3
notice makes, so that the check judges both alike — and its cursor.
"""

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select, update
from starlette.applications import Starlette

from payhook.app import create_app
from payhook.db.locks import ProcessLock
from payhook.db.tables import checkout_sessions
from payhook.db.tables import outbox_entries as outbox
from payhook.domain.watching import MAX_RECIPIENT_TOPICS, MAX_STEP_BLOCKS, START_BLOCKS, Cursor
from payhook.effects.chain import Chain
from payhook.effects.watch import ChainMoved, Watcher, advance, read_cursor
from payhook.runtime.watching import WatchLoop
from tests import signing
from tests.anvil import (
    CHAIN_ID,
    CountingProxy,
    Node,
    free_port,
    new_account,
    running,
    transfer_call,
)
from tests.conftest import make_settings, new_merchant
from tests.e2e.conftest import clean_environment
from tests.paying import session_row
from tests.wallet import XPUB

CONFIRMATIONS = 3
WEI = 10**15
UNITS = 5_000_000
CHECK = "onchain.check"
PAYHOOK = str(Path(sys.executable).with_name("payhook"))


@dataclass
class World:
    node: Node
    payer: LocalAccount
    token: str
    look_alike: str
    base: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One anvil for the module: a funded payer, the configured token and a look-alike (the
    same contract at another address)."""
    with running() as anvil:
        payer = new_account(anvil.node)
        token, look_alike = (anvil.node.deploy_token(payer, "USDT", 10**15).lower()
                             for _ in range(2))
        yield World(anvil.node, payer, token, look_alike, anvil.node.snapshot())


@pytest.fixture
def chain(world: World) -> Iterator[Node]:
    """The node, back at the module's snapshot after the test."""
    try:
        yield world.node
    finally:
        world.node.revert(world.base)
        world.base = world.node.snapshot()


def web3_settings(database_url: str, world: World, **overrides):
    return make_settings(database_url, **{
        "web3_rpc_url": world.node.url, "web3_chain_id": CHAIN_ID,
        "web3_confirmations": CONFIRMATIONS,
        "web3_tokens": f"usdt:{world.token}:6", **overrides})


@pytest.fixture
def settings(database_url, world):
    return web3_settings(database_url, world)


@pytest.fixture
def engine(app):
    return app.state.payhook.engine


def watcher_at(engine, settings, url: str | None = None) -> Watcher:
    """A watcher as a worker builds it (``url``: its node, when not the configured one)."""
    return Watcher(engine, Chain.connect(url or settings.web3_rpc_url), settings)


@pytest.fixture
async def watcher(engine, settings) -> AsyncIterator[Watcher]:
    watching = watcher_at(engine, settings)
    yield watching
    await watching.chain.close()


@pytest.fixture
def open_session(client, merchant, engine):
    """A session of ``merchant`` whose deposit address is ``address`` (set by SQL: the
    derivation is not under test here)."""

    async def open_(address: str, currency: str = "eth", amount: int = WEI) -> str:
        answer = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                                   json={"amount": amount, "currency": currency})
        assert answer.status_code == 201, answer.text
        session_id = str(answer.json()["id"])
        await give_address(engine, session_id, address)
        return session_id

    return open_


async def give_address(engine, session_id: str, address: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(checkout_sessions).where(checkout_sessions.c.id == session_id)
                           .values(deposit_address=address.lower()))


def pay_eth(chain: Node, payer: LocalAccount, to: str, wei: int = WEI) -> str:
    return chain.send(payer, to, wei)


def pay_token(chain: Node, payer: LocalAccount, token: str, to: str, units: int = UNITS) -> str:
    return chain.send(payer, token, data=transfer_call(to, units), gas=100_000)


async def checks(engine) -> list[tuple[str, str]]:
    """The queued checks as (session, transaction), each with the notice's payload shape."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.payload).where(outbox.c.kind == CHECK)
                                   .order_by(outbox.c.created_at))).scalars().all()
    assert all(set(payload) == {"session_id", "event", "tx_hash"} for payload in rows)
    return sorted((payload["session_id"], payload["tx_hash"]) for payload in rows)


async def cursor_of(engine) -> Cursor | None:
    async with engine.connect() as conn:
        return await read_cursor(conn, CHAIN_ID)


def block_hash(chain: Node, number: int) -> str:
    return str(chain.call("eth_getBlockByNumber", hex(number), False)["hash"])


async def started(watcher: Watcher, chain: Node) -> None:
    """The watcher's first tick (it places its cursor), with nothing to find yet."""
    tick = await watcher.tick()
    assert tick.caught_up and tick.found == 0 and tick.head == chain.head()


async def test_a_transfer_with_no_notice_is_found_and_queued_once(open_session, engine,
                                                                  watcher, chain, world):
    await started(watcher, chain)
    address = Account.create().address
    session_id = await open_session(address)
    tx_hash = pay_eth(chain, world.payer, address)
    other = pay_eth(chain, world.payer, Account.create().address)  # no session's address
    head = chain.mine_at()

    tick = await watcher.tick()
    assert (tick.head, tick.found) == (head, 1)
    assert await checks(engine) == [(session_id, tx_hash)]
    assert await cursor_of(engine) == Cursor(head, block_hash(chain, head))
    assert other not in {tx for _, tx in await checks(engine)}

    chain.mine(1)  # a later block: nothing is found twice
    await watcher.tick()
    assert await checks(engine) == [(session_id, tx_hash)]


async def test_a_first_start_reads_a_little_before_the_head_not_from_genesis(
        open_session, engine, watcher, chain, world):
    address = Account.create().address
    session_id = await open_session(address)
    tx_hash = pay_eth(chain, world.payer, address)
    paid_in = chain.mine_at()
    chain.mine(START_BLOCKS + 10)
    early = pay_eth(chain, world.payer, address)  # within the window: found
    chain.mine_at()
    head = chain.head()
    tick = await watcher.tick()
    assert tick.found == 1 and await checks(engine) == [(session_id, early)]
    assert tx_hash not in {tx for _, tx in await checks(engine)}  # older than the window
    assert paid_in < head - START_BLOCKS
    assert await cursor_of(engine) == Cursor(head, block_hash(chain, head))


async def test_the_configured_token_is_found_by_its_logs_and_a_look_alike_is_not(
        open_session, engine, watcher, chain, world):
    await started(watcher, chain)
    address = Account.create().address
    session_id = await open_session(address, "usdt", UNITS)
    paid = pay_token(chain, world.payer, world.token, address)
    look_alike = pay_token(chain, world.payer, world.look_alike, address)
    nothing = pay_token(chain, world.payer, world.token, address, 0)  # address poisoning
    chain.mine_at()
    assert all(chain.receipt(tx)["status"] == "0x1" for tx in (paid, look_alike, nothing))
    await watcher.tick()
    assert await checks(engine) == [(session_id, paid)]


async def test_a_split_payment_makes_two_checks(open_session, engine, watcher, chain, world):
    await started(watcher, chain)
    address = Account.create().address
    session_id = await open_session(address)
    first = pay_eth(chain, world.payer, address, WEI // 2)
    chain.mine_at()
    second = pay_eth(chain, world.payer, address, WEI // 2)
    chain.mine_at()
    await watcher.tick()
    assert await checks(engine) == sorted([(session_id, first), (session_id, second)])


async def test_a_notice_and_the_watcher_make_one_check(client, open_session, engine, watcher,
                                                       chain, world):
    await started(watcher, chain)
    address = Account.create().address
    session_id = await open_session(address)
    tx_hash = pay_eth(chain, world.payer, address)
    chain.mine_at()
    raw, headers = signing.signed("web3", signing.web3_event(session_id, tx_hash=tx_hash))
    answer = await client.post("/webhooks/web3", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    await watcher.tick()
    async with engine.connect() as conn:
        [row] = (await conn.execute(select(outbox).where(outbox.c.kind == CHECK))).all()
    assert row.payload["event"] is not None  # the notice's check, not a second one


async def test_a_reorg_below_the_cursor_is_read_again_and_nothing_doubles(
        open_session, engine, watcher, chain, world):
    await started(watcher, chain)
    address = Account.create().address
    session_id = await open_session(address)
    fork = chain.snapshot()
    kept = pay_eth(chain, world.payer, address)
    orphaned_at = chain.mine_at()
    await watcher.tick()
    assert await checks(engine) == [(session_id, kept)]

    chain.revert(fork)  # the cursor's block is orphaned
    assert pay_eth(chain, world.payer, address) == kept  # mined again, in another block
    late = pay_eth(chain, world.payer, address, WEI // 2)
    assert chain.mine_at() == orphaned_at
    head = chain.mine_at()
    tick = await watcher.tick()
    assert tick.caught_up
    assert await checks(engine) == sorted([(session_id, kept), (session_id, late)])
    assert await cursor_of(engine) == Cursor(head, block_hash(chain, head))


class FlakyProxy(CountingProxy):
    """The counting proxy, answering 503 while ``down`` or once ``fail_after`` block reads
    were forwarded: a node that fails in the middle of a step."""

    down: bool = False
    fail_after: int | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        reads = self.calls["eth_getBlockByNumber"]
        if self.down or (self.fail_after is not None and reads >= self.fail_after):
            return web.Response(status=503, text="down")
        return await super()._forward(request)


@pytest.fixture
async def proxy(world) -> AsyncIterator[FlakyProxy]:
    counting = await FlakyProxy(world.node.url).start()
    yield counting
    await counting.stop()


async def test_a_watcher_stopped_mid_watch_resumes_from_its_cursor(
        open_session, engine, settings, proxy, chain, world):
    first = watcher_at(engine, settings, proxy.url)
    try:
        await started(first, chain)
        start = (await cursor_of(engine)).number
        address = Account.create().address
        session_id = await open_session(address)
        chain.mine(100)
        early = pay_eth(chain, world.payer, address, WEI // 2)
        chain.mine_at()
        chain.mine(MAX_STEP_BLOCKS)
        late = pay_eth(chain, world.payer, address, WEI // 2)
        chain.mine_at()
        proxy.fail_after = proxy.calls["eth_getBlockByNumber"] + MAX_STEP_BLOCKS + 20
        with pytest.raises(Exception):  # noqa: B017 - the node fails in the second step
            await first.tick()
    finally:
        await first.chain.close()
    assert await checks(engine) == [(session_id, early)]  # the first step is committed
    assert (await cursor_of(engine)).number == start + MAX_STEP_BLOCKS

    proxy.fail_after = None
    restarted = watcher_at(engine, settings, proxy.url)
    try:
        assert (await restarted.tick()).caught_up
    finally:
        await restarted.chain.close()
    assert await checks(engine) == sorted([(session_id, early), (session_id, late)])


async def test_a_loop_stopped_anywhere_resumes_with_nothing_missed_or_doubled(
        open_session, engine, settings, watcher, chain, world):
    await started(watcher, chain)
    address = Account.create().address
    session_id = await open_session(address)
    paid = []
    for _ in range(3):
        chain.mine(MAX_STEP_BLOCKS // 2)
        paid.append(pay_eth(chain, world.payer, address, WEI // 3))
        chain.mine_at()
    head = chain.head()
    for delay in (0.1, 0.3, None):  # stopped twice mid-watch, then left to catch up
        loop = WatchLoop.build(watcher_at(engine, settings), tick_seconds=0.05)
        loop.start()
        try:
            if delay is not None:
                await asyncio.sleep(delay)
            else:
                while (await cursor_of(engine) or Cursor(-1, "")).number < head:
                    await asyncio.sleep(0.05)
        finally:
            await loop.stop()
            await loop.watcher.chain.close()
    assert await checks(engine) == sorted((session_id, tx) for tx in paid)


async def test_an_idle_tick_costs_one_call_and_a_block_costs_the_same_for_many_sessions(
        open_session, engine, settings, proxy, chain, world):
    counted = watcher_at(engine, settings, proxy.url)
    try:
        await started(counted, chain)
        proxy.calls.clear()
        await counted.tick()
        await counted.tick()
        assert dict(proxy.calls) == {"eth_blockNumber": 2}

        costs = []
        for sessions in (1, MAX_RECIPIENT_TOPICS + 1):
            found = await open_many(open_session, engine, sessions)
            paid = pay_token(chain, world.payer, world.token, found)
            chain.mine_at()
            proxy.calls.clear()
            await counted.tick()
            costs.append(dict(proxy.calls))
            assert paid in {tx for _, tx in await checks(engine)}
    finally:
        await counted.chain.close()
    assert costs[0] == costs[1] == {"eth_blockNumber": 1, "eth_getBlockByNumber": 1,
                                    "eth_getLogs": 1}


async def open_many(open_session, engine, count: int) -> str:
    """``count`` open token sessions more (copies of one made through the API); the address
    of the last."""
    addresses = [Account.create().address.lower() for _ in range(count)]
    session_id = await open_session(addresses[0], "usdt", UNITS)
    async with engine.begin() as conn:
        row = dict((await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id == session_id))).one()._mapping)
        if count > 1:
            await conn.execute(checkout_sessions.insert(), [
                {**row, "id": f"{session_id[:-6]}{index:06d}", "deposit_address": address,
                 "deposit_index": None}  # copies: their address is set here, not derived
                for index, address in enumerate(addresses[1:])])
    return addresses[-1]


async def test_a_cursor_moved_by_another_watcher_commits_nothing(engine, watcher, chain):
    await started(watcher, chain)
    stale = await cursor_of(engine)
    chain.mine(1)
    await watcher.tick()
    async with engine.connect() as conn:
        with pytest.raises(ChainMoved):
            await advance(conn, CHAIN_ID, stale, Cursor(stale.number + 1, "0x" + "1" * 64),
                          [], 10)
    assert await cursor_of(engine) == Cursor(chain.head(), block_hash(chain, chain.head()))


async def test_one_process_at_a_time_holds_the_watch(pg_url):
    from payhook.db.engine import create_engine

    engines = [create_engine(pg_url, pool_size=2) for _ in range(2)]
    locks = [ProcessLock(engine, CHAIN_ID) for engine in engines]
    try:
        assert await locks[0].hold() and await locks[0].hold()
        assert not await locks[1].hold()
        await locks[0].release()  # as when its process dies: its connection closes
        assert await locks[1].hold()
        assert not await locks[0].hold()
    finally:
        for lock, engine in zip(locks, engines, strict=True):
            await lock.release()
            await engine.dispose()


async def test_a_node_that_goes_down_never_stops_the_loop(open_session, engine, settings,
                                                          proxy, chain, world):
    address = Account.create().address
    session_id = await open_session(address)
    proxy.down = True
    loop = WatchLoop.build(watcher_at(engine, settings, proxy.url), tick_seconds=0.05)
    loop.start()
    try:
        await asyncio.sleep(0.5)
        assert await cursor_of(engine) is None
        tx_hash = pay_eth(chain, world.payer, address)
        chain.mine_at()
        proxy.down = False
        for _ in range(100):  # the backoff doubles from 0.05 s: well within 5 s
            if await checks(engine):
                break
            await asyncio.sleep(0.05)
        assert await checks(engine) == [(session_id, tx_hash)]
    finally:
        await loop.stop()
        await loop.watcher.chain.close()


@pytest.fixture
async def embedded(database_url, world) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app as ``payhook serve`` runs it on the embedded default: drain and watch inside."""
    app = create_app(web3_settings(database_url, world))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://payhook.test") as client:
            yield app, client


async def test_the_embedded_default_finds_and_pays_a_payment_with_no_notice(embedded, world,
                                                                            chain):
    app, client = embedded
    merchant = await new_merchant(client)
    answer = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                               json={"amount": WEI, "currency": "eth"})
    # The session's own deposit address, derived from the configured xpub: no notice is sent.
    session_id, address = answer.json()["id"], answer.json()["crypto_payment"]["address"]
    tx_hash = pay_eth(chain, world.payer, address)
    chain.mine_at()
    chain.mine(CONFIRMATIONS - 1)
    for _ in range(200):  # a tick every 2 s, a drain poll every 0.5 s
        row = await session_row(app, session_id)
        if row.status == "paid":
            break
        await asyncio.sleep(0.1)
    assert (row.status, row.payment_provider, row.provider_reference) == (
        "paid", "web3", tx_hash)


async def test_readyz_reports_the_watch_and_a_node_it_cannot_use(database_url, world, chain):
    reports = {}
    for name, overrides in (("ok", {}), ("down", {"web3_rpc_url":
                                                   f"http://127.0.0.1:{free_port()}/v3/key"}),
                            ("wrong", {"web3_chain_id": CHAIN_ID + 1})):
        app = create_app(web3_settings(database_url, world, **overrides), embedded_worker=False)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://t") as client:
                answer = await client.get("/readyz")
        assert answer.status_code == 200  # the web process stays ready: webhooks still land
        reports[name] = answer.json()
    ok, down, wrong = reports["ok"], reports["down"], reports["wrong"]
    assert ok["status"] == "ok" and ok["web3"]["status"] == "ok"
    assert (ok["web3"]["chain_id"], ok["web3"]["head"]) == (CHAIN_ID, chain.head())
    assert ok["web3"]["confirmations"] == CONFIRMATIONS and ok["web3"]["cursor"] is None
    assert down["status"] == "degraded" and down["web3"]["status"] == "unreachable"
    assert "key" not in down["web3"]["error"]
    assert wrong["status"] == "degraded" and wrong["web3"]["status"] == "wrong_chain"
    assert wrong["web3"]["served_chain_id"] == CHAIN_ID


async def test_web3_status_prints_the_node_and_the_watch(open_session, engine, watcher,
                                                         settings, database_url, chain):
    await started(watcher, chain)
    await open_session(Account.create().address)
    env = {**clean_environment(), "DATABASE_URL": database_url,
           "PAYHOOK_SECRET_KEY": settings.require_secret(),
           "PAYHOOK_ADMIN_TOKEN": settings.require_admin_token(),
           "PAYHOOK_WEB3_RPC_URL": settings.web3_rpc_url,
           "PAYHOOK_WEB3_CHAIN_ID": str(CHAIN_ID),
           "PAYHOOK_WEB3_XPUB": XPUB,
           "PAYHOOK_WEB3_CONFIRMATIONS": str(CONFIRMATIONS)}
    as_json = await asyncio.to_thread(subprocess.run, [PAYHOOK, "web3", "status", "--json"],
                                      env=env, capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    head = chain.head()
    assert (report["status"], report["chain_id"], report["head"], report["behind"]) == (
        "ok", CHAIN_ID, head, 0)
    assert report["cursor"]["block_number"] == head and report["watched_addresses"] == 1
    as_text = await asyncio.to_thread(subprocess.run, [PAYHOOK, "web3", "status"], env=env,
                                      capture_output=True, text=True, timeout=60)
    lines = as_text.stdout.splitlines()
    assert f"chain id: {CHAIN_ID}" in lines and "open addresses watched: 1" in lines
    assert f"cursor: block {head} {block_hash(chain, head)}" in as_text.stdout
