"""The chain watch in ``payhook worker`` processes against PostgreSQL and anvil: of two
workers one watches; killed with SIGKILL in the middle of a catch-up, the other takes over
from the cursor, and every payment gets exactly one check."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest
from eth_account import Account

from payhook.db.locks import WATCHER_LOCK
from tests.anvil import CHAIN_ID, new_account, running
from tests.conftest import _dsn
from tests.e2e.processes import new_merchant, service_env, wait_for, web, worker
from tests.wallet import XPUB

BLOCKS_BETWEEN = 2000
READ_SECONDS = 0.002  # the node's time per call, one call at a time: a catch-up takes seconds


def query(url: str, sql: str, *args):
    """One value straight from the test's PostgreSQL database."""

    async def fetch():
        conn = await asyncpg.connect(_dsn(url))
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_a_killed_watcher_is_replaced_and_no_payment_is_missed_or_doubled(pg_url, redis_server,
                                                                            tmp_path):
    with running() as anvil, slow(anvil.node.url) as slow_url:
        node = anvil.node
        payer = new_account(node)
        env = service_env(pg_url, REDIS_URL=redis_server.url,
                          PAYHOOK_WEB3_RPC_URL=slow_url, PAYHOOK_WEB3_CHAIN_ID=str(CHAIN_ID),
                          PAYHOOK_WEB3_XPUB=XPUB,
                          PAYHOOK_WEB3_CONFIRMATIONS="1")
        server = web(env, tmp_path / "web.log").start()
        workers = [worker(env, tmp_path / f"worker-{n}.log") for n in range(2)]
        try:
            headers = new_merchant(server.url)
            addresses = [Account.create().address.lower() for _ in range(3)]
            sessions = [open_session(server.url, headers, pg_url, address)
                        for address in addresses]
            head = node.head()
            start = str(node.call("eth_getBlockByNumber", hex(head), False)["hash"])
            query(pg_url, "INSERT INTO chain_cursors VALUES ($1, $2, $3, now())",
                  CHAIN_ID, head, start)  # where an earlier watcher stopped
            paid = []
            for address in addresses:
                for _ in range(BLOCKS_BETWEEN // 500):  # anvil slows on longer calls
                    node.mine(500)
                paid.append(node.send(payer, address, 10**15))
                node.mine_at()
            workers[0].start()
            wait_for(lambda: cursor(pg_url) > head, 60, "the first worker to watch")
            workers[1].start()  # the stand-by: it tries for the watch at every tick
            wait_for(lambda: "Starting worker" in workers[1].output(), 60, "the second worker")
            holders = query(pg_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND classid = $1 AND granted", WATCHER_LOCK)
            killed_at = cursor(pg_url)
            workers[0].kill()  # the watcher, in the middle of its catch-up
            wait_for(lambda: cursor(pg_url) == node.head(), 300, "the stand-by to catch up")
            assert holders == 1 and head < killed_at < node.head()
            assert workers[1].alive
        finally:
            for process in workers:
                if process.alive:
                    process.stop()
            server.stop()
        found = query(pg_url, "SELECT string_agg(payload->>'session_id' || ' ' || "
                              "(payload->>'tx_hash'), ',' ORDER BY payload->>'tx_hash') "
                              "FROM outbox_entries WHERE kind = 'onchain.check'")
        assert sorted(found.split(",")) == sorted(
            f"{session} {tx}" for session, tx in zip(sessions, paid, strict=True))


@contextmanager
def slow(upstream: str) -> Iterator[str]:
    """A node that answers one call at a time, each after :data:`READ_SECONDS`: a loopback
    proxy in front of anvil, in a thread of its own."""
    gate = threading.Lock()
    http = httpx.Client(timeout=10, trust_env=False)

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the handler's name is http.server's
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with gate:
                time.sleep(READ_SECONDS)
                answer = http.post(upstream, content=body,
                                   headers={"Content-Type": "application/json"})
            self.send_response(answer.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        http.close()


def cursor(url: str) -> int:
    return int(query(url, "SELECT coalesce(max(block_number), -1) FROM chain_cursors"))


def open_session(base_url: str, headers: dict[str, str], pg_url: str, address: str) -> str:
    answer = httpx.post(f"{base_url}/v1/checkout/sessions", headers=headers, timeout=10,
                        json={"amount": 10**15, "currency": "eth"})
    assert answer.status_code == 201, answer.text
    session_id = str(answer.json()["id"])
    query(pg_url, "UPDATE checkout_sessions SET deposit_address = $1 WHERE id = $2",
          address, session_id)
    return session_id
