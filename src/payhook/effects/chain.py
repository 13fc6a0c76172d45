"""The Ethereum node, read through web3.py's async API (``PAYHOOK_WEB3_RPC_URL``): a
transaction for the on-chain check (:meth:`Chain.sight`), and blocks and token logs for the
chain watch (:meth:`Chain.head`, :meth:`Chain.block`, :meth:`Chain.token_transfers`).

web3 takes over a second to import, so it is imported only when a node is configured: the web
process, the CLI and a worker without ``PAYHOOK_WEB3_RPC_URL`` never pay for it.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from payhook.domain import watching
from payhook.domain.onchain import TRANSFER_TOPIC, Log, MinedTransaction
from payhook.domain.watching import Block, NativeTransfer, TokenTransfer

if TYPE_CHECKING:
    from eth_typing import BlockNumber, HexStr
    from web3 import AsyncHTTPProvider, AsyncWeb3
    from web3.types import BlockData, FilterParams, LogReceipt, TxData, TxReceipt

log = logging.getLogger("payhook.onchain")

RPC_TIMEOUT_SECONDS = 10.0


class WrongChain(Exception):
    """The node serves another chain than ``PAYHOOK_WEB3_CHAIN_ID``: no check may run."""


@dataclass(frozen=True)
class Sighting:
    """How far a transaction is: ``confirmations`` counts its own block as the first (0 when
    unknown, still pending, or dropped by a reorg); ``mined`` is set once the required number
    was reached and re-read at the threshold."""

    confirmations: int
    mined: MinedTransaction | None = None


class Chain:
    def __init__(self, web3: "AsyncWeb3[AsyncHTTPProvider]"):
        self.web3 = web3

    @classmethod
    def connect(cls, rpc_url: str) -> "Chain":
        """A client for ``rpc_url``; no request is made until the first check."""
        from aiohttp import ClientTimeout
        from web3 import AsyncHTTPProvider, AsyncWeb3

        # No retries inside web3: a failed read fails the outbox attempt, which backs off.
        provider = AsyncHTTPProvider(
            rpc_url, request_kwargs={"timeout": ClientTimeout(total=RPC_TIMEOUT_SECONDS)},
            exception_retry_configuration=None)
        return cls(AsyncWeb3(provider))

    async def close(self) -> None:
        await self.web3.provider.disconnect()

    async def served_chain_id(self) -> int:
        return int(await self.web3.eth.chain_id)

    async def require_chain_id(self, configured: int) -> None:
        served = await self.served_chain_id()
        if served != configured:
            log.error("the web3 node serves chain %s, not PAYHOOK_WEB3_CHAIN_ID %s: "
                      "no on-chain check runs", served, configured)
            raise WrongChain(f"the node serves chain {served}, "
                             f"PAYHOOK_WEB3_CHAIN_ID is {configured}")

    async def sight(self, tx_hash: str, required: int) -> Sighting:
        """Count the transaction's confirmations; at ``required``, read the transaction, its
        receipt and its block again, so a reorg since the first read (the transaction dropped,
        or moved to another block) shows as not mined rather than as paid."""
        first = await self._receipt(tx_hash)
        if first is None:
            return Sighting(0)
        head = await self.web3.eth.block_number
        confirmations = head - first["blockNumber"] + 1
        if confirmations < required:
            return Sighting(confirmations)
        transaction = await self._transaction(tx_hash)
        receipt = await self._receipt(tx_hash)
        if transaction is None or receipt is None or receipt["blockHash"] != first["blockHash"]:
            return Sighting(0)
        block = await self._block(receipt["blockNumber"])
        if block is None or block["hash"] != receipt["blockHash"]:
            return Sighting(0)
        return Sighting(confirmations, _mined(tx_hash, transaction, receipt, block))

    async def head(self) -> int:
        return int(await self.web3.eth.block_number)

    async def block(self, number: int, *, transfers: bool = False) -> Block | None:
        """The block at ``number`` (None past the head); with ``transfers``, its transactions
        to an address (the block with its transactions: one call all the same)."""
        data = await self._block(number, full=transfers)
        if data is None:
            return None
        sent = (tuple(_native(tx) for tx in data["transactions"]
                      if isinstance(tx, Mapping) and tx.get("to")) if transfers else ())
        return Block(number=int(data["number"]), hash=_hex(data["hash"]),
                     parent_hash=_hex(data["parentHash"]), transfers=sent)

    async def token_transfers(self, first: int, last: int, contracts: Sequence[str],
                              recipients: Sequence[str] | None) -> list[TokenTransfer]:
        """The ``Transfer`` logs of ``contracts`` in blocks ``first``…``last``, to
        ``recipients`` (None: to anyone) — one call, however many recipients."""
        from eth_utils.address import to_checksum_address

        to = None if recipients is None else [watching.topic(address) for address in recipients]
        query = {"fromBlock": first, "toBlock": last,
                 "address": [to_checksum_address(contract) for contract in contracts],
                 "topics": ["0x" + TRANSFER_TOPIC.hex(), None, to]}
        logs = await self.web3.eth.get_logs(cast("FilterParams", query))
        return [_token_transfer(entry) for entry in logs if _is_transfer(entry)]

    async def _receipt(self, tx_hash: str) -> "TxReceipt | None":
        from web3.exceptions import TransactionNotFound

        try:
            return await self.web3.eth.get_transaction_receipt(cast("HexStr", tx_hash))
        except TransactionNotFound:
            return None

    async def _transaction(self, tx_hash: str) -> "TxData | None":
        from web3.exceptions import TransactionNotFound

        try:
            return await self.web3.eth.get_transaction(cast("HexStr", tx_hash))
        except TransactionNotFound:
            return None

    async def _block(self, number: int, full: bool = False) -> "BlockData | None":
        from web3.exceptions import BlockNotFound

        try:
            return await self.web3.eth.get_block(cast("BlockNumber", number), full)
        except BlockNotFound:
            return None


def _mined(tx_hash: str, transaction: "TxData", receipt: "TxReceipt",
           block: "BlockData") -> MinedTransaction:
    to = transaction.get("to")
    return MinedTransaction(
        hash=tx_hash, to=to.lower() if to else None, value=int(transaction["value"]),
        status=int(receipt["status"]), block_number=int(receipt["blockNumber"]),
        block_hash=_hex(receipt["blockHash"]), block_timestamp=int(block["timestamp"]),
        logs=tuple(Log(address=str(entry["address"]).lower(),
                       topics=tuple(bytes(topic) for topic in entry["topics"]),
                       data=bytes(entry["data"]))
                   for entry in receipt["logs"]))


def _native(tx: "TxData") -> NativeTransfer:
    return NativeTransfer(tx_hash=_hex(tx["hash"]), to=str(tx["to"]).lower(),
                          value=int(tx["value"]))


def _is_transfer(entry: "LogReceipt") -> bool:
    """An ERC-20 ``Transfer`` (ERC-721 shares topic0 but has four topics and no data) that a
    reorg has not removed."""
    topics = entry["topics"]
    return (not entry.get("removed") and len(topics) == 3
            and bytes(topics[0]) == TRANSFER_TOPIC and len(bytes(entry["data"])) == 32)


def _token_transfer(entry: "LogReceipt") -> TokenTransfer:
    return TokenTransfer(tx_hash=_hex(entry["transactionHash"]),
                         contract=str(entry["address"]).lower(),
                         to="0x" + bytes(entry["topics"][2])[-20:].hex(),
                         value=int.from_bytes(bytes(entry["data"]), "big"))


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()
