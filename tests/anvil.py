"""A local Ethereum node for the on-chain tests: anvil from the npm package `@foundry-rs/anvil`
(installed by `make test` into node_modules), on a free loopback port, mining only when asked.

The test side talks plain JSON-RPC and signs real transactions with eth-account, so it shares
no code with the web3 client under test. Anvil starts an hour in the past and every block that
holds a payment is mined at the wall clock's second (or one given), so a session created just
before is never newer than the block paying it unless a test wants it so.
"""

import json
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eth_abi
import httpx
import pytest
from aiohttp import web
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from tests.wallet import ANVIL_MNEMONIC, CHAIN_ID

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
TOKEN_ARTIFACT = Path(__file__).resolve().parent / "fixtures" / "TestToken.json"
INSTALL_HINT = "run `make test` (it installs it) or `npm install --no-audit --no-fund`"
GWEI = 10**9
DEV_ACCOUNTS = 10  # anvil's funded accounts, m/44'/60'/0'/0/<i> of the tests' wallet


class RpcError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Node:
    """JSON-RPC to anvil, with the cheat codes the tests use."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(timeout=10, trust_env=False)

    def call(self, method: str, *params: Any) -> Any:
        answer = self.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                "params": list(params)}).json()
        if "error" in answer:
            raise RpcError(f"{method}: {answer['error']}")
        return answer["result"]

    def snapshot(self) -> str:
        return str(self.call("evm_snapshot"))

    def revert(self, snapshot: str) -> None:
        """Back to ``snapshot`` (which anvil then forgets), with an empty mempool."""
        assert self.call("evm_revert", snapshot) is True
        self.call("anvil_dropAllTransactions")

    def mine_at(self, timestamp: int | None = None) -> int:
        """One block holding the mempool, at ``timestamp`` (default: now); its number."""
        self.call("evm_mine", timestamp if timestamp is not None else int(time.time()))
        return self.head()

    def mine(self, blocks: int) -> None:
        self.call("anvil_mine", hex(blocks))

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def fund(self, address: str, wei: int) -> None:
        self.call("anvil_setBalance", address, hex(wei))

    def send(self, account: LocalAccount, to: str | None, value: int = 0, data: bytes = b"",
             gas: int = 21_000) -> str:
        """Sign with eth-account and submit; the hash of the (not yet mined) transaction."""
        nonce = int(self.call("eth_getTransactionCount", account.address, "pending"), 16)
        transaction: dict[str, Any] = {
            "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "value": value, "data": data,
            "gas": gas, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI}
        if to is not None:  # None: a contract creation
            transaction["to"] = to_checksum_address(to)
        signed = account.sign_transaction(transaction)
        return str(self.call("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex()))

    def receipt(self, tx_hash: str) -> dict[str, Any]:
        return dict(self.call("eth_getTransactionReceipt", tx_hash))

    def deploy_token(self, account: LocalAccount, symbol: str, supply: int) -> str:
        artifact = json.loads(TOKEN_ARTIFACT.read_text())
        arguments = eth_abi.encode(["string", "string", "uint8", "uint256"],
                                   [f"Test {symbol}", symbol, 6, supply])
        tx_hash = self.send(account, None, data=bytes.fromhex(artifact["bytecode"][2:]) + arguments,
                            gas=2_000_000)
        self.mine(1)
        return str(self.receipt(tx_hash)["contractAddress"])


def transfer_call(to: str, amount: int) -> bytes:
    """Calldata of ERC-20 ``transfer(to, amount)``."""
    return keccak(text="transfer(address,uint256)")[:4] + eth_abi.encode(
        ["address", "uint256"], [to_checksum_address(to), amount])


def new_account(node: Node, wei: int = 10**21) -> LocalAccount:
    account: LocalAccount = Account.create()
    node.fund(account.address, wei)
    return account


@dataclass
class Anvil:
    process: subprocess.Popen[bytes]
    node: Node

    @classmethod
    def start(cls) -> "Anvil":
        if not ANVIL.exists():
            raise FileNotFoundError(f"anvil is not installed at {ANVIL}: {INSTALL_HINT}")
        port = free_port()
        process = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(CHAIN_ID),
             "--no-mining", "--silent", "--mnemonic", ANVIL_MNEMONIC,
             "--accounts", str(DEV_ACCOUNTS),
             "--timestamp", str(int(time.time()) - 3600)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        node = Node(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 15
        while True:
            try:
                node.call("eth_chainId")
                return cls(process, node)
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    cls(process, node).stop()
                    raise RuntimeError(f"anvil did not start on port {port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.node.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()


@contextmanager
def running() -> Iterator[Anvil]:
    """An anvil for a test module; without the binary the run ends saying how to install it."""
    try:
        anvil = Anvil.start()
    except FileNotFoundError as missing:
        pytest.exit(str(missing), returncode=3)
    try:
        yield anvil
    finally:
        anvil.stop()


@dataclass
class CountingProxy:
    """A loopback HTTP server in front of the node that forwards every JSON-RPC request and
    counts them by method: how hard the worker leans on the node provider."""

    upstream: str
    calls: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _runner: web.AppRunner | None = None
    _http: httpx.AsyncClient | None = None

    async def start(self) -> "CountingProxy":
        self._http = httpx.AsyncClient(timeout=10, trust_env=False)
        app = web.Application()
        app.router.add_post("/", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.aclose()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        raw = await request.read()
        body = json.loads(raw)
        for call in body if isinstance(body, list) else [body]:
            self.calls[call["method"]] += 1
        answer = await self._http.post(self.upstream, content=raw,
                                       headers={"Content-Type": "application/json"})
        return web.Response(body=answer.content, status=answer.status_code,
                            content_type="application/json")
