"""Whether a mined transaction pays a session: the on-chain money rules, pure, no I/O.

The worker reads the transaction (confirmed, re-read at the threshold) and the session, then
asks :func:`judge`. Native ``eth``: the transaction's ``to`` is the receive address and its
value covers the amount. An ERC-20 token: ``Transfer`` logs emitted by exactly the configured
contract to the receive address cover the amount — the receipt's status alone proves nothing
(some tokens return ``false`` instead of reverting), and a look-alike contract's log is ignored.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NATIVE = "eth"
TRANSFER_TOPIC = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

# Anomaly kinds of an on-chain check (API.md, GET /admin/anomalies).
REVERTED = "reverted"
TOO_OLD = "too_old"
WRONG_RECIPIENT = "wrong_recipient"
WRONG_TOKEN = "wrong_token"
UNDERPAID = "underpaid"
OVERPAID = "overpaid"
REUSED = "reused"
NOT_FOUND = "not_found"
UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True)
class Log:
    address: str  # lowercase 0x-hex
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class MinedTransaction:
    """A transaction as the chain shows it once confirmed: the transaction, its receipt and
    the block it is in."""

    hash: str
    to: str | None  # lowercase 0x-hex; None for a contract creation
    value: int
    status: int
    block_number: int
    block_hash: str
    block_timestamp: int
    logs: tuple[Log, ...] = ()


@dataclass(frozen=True)
class Expected:
    """What the session asks for; ``token`` is the contract's address, None for native eth."""

    amount: int
    receive_address: str
    token: str | None
    not_before: int  # the session's creation second (Unix time)


@dataclass(frozen=True)
class Verdict:
    pays: bool
    received: int = 0
    anomaly: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def token_contracts(tokens: Iterable[str]) -> dict[str, str]:
    """``symbol:contract:decimals`` settings as {symbol: lowercase contract address}."""
    return {symbol: contract.lower()
            for symbol, contract, _decimals in (token.split(":") for token in tokens)}


def judge(tx: MinedTransaction, expected: Expected) -> Verdict:
    if tx.status != 1:
        return Verdict(False, anomaly=REVERTED, details={"status": tx.status})
    if tx.block_timestamp < expected.not_before:
        return Verdict(False, anomaly=TOO_OLD, details={
            "block_timestamp": tx.block_timestamp, "session_created": expected.not_before})
    refusal = (_native_refusal(tx, expected) if expected.token is None
               else _token_refusal(tx, expected.token, expected.receive_address))
    if refusal is not None:
        return refusal
    received = (tx.value if expected.token is None
                else sum(_transfers_to(tx, expected.token, expected.receive_address)))
    amounts = {"expected": expected.amount, "received": received}
    if received < expected.amount:
        return Verdict(False, received, UNDERPAID, amounts)
    if received > expected.amount:
        return Verdict(True, received, OVERPAID, amounts)
    return Verdict(True, received)


def _native_refusal(tx: MinedTransaction, wanted: Expected) -> Verdict | None:
    if tx.to != wanted.receive_address.lower():
        return Verdict(False, anomaly=WRONG_RECIPIENT, details={"recipient": tx.to})
    return None


def _token_refusal(tx: MinedTransaction, contract: str, receive_address: str) -> Verdict | None:
    if any(True for _ in _transfers_to(tx, contract, receive_address)):
        return None
    receive_address = receive_address.lower()
    transfers = [(log.address, _recipient(log)) for log in tx.logs if _is_transfer(log)]
    look_alikes = sorted({address for address, to in transfers if to == receive_address})
    if look_alikes:
        return Verdict(False, anomaly=WRONG_TOKEN, details={"token_contracts": look_alikes})
    recipients = sorted({to for address, to in transfers if address == contract})
    if recipients:
        return Verdict(False, anomaly=WRONG_RECIPIENT, details={"recipients": recipients})
    return Verdict(False, anomaly=WRONG_TOKEN, details={"token_contracts": []})


def _transfers_to(tx: MinedTransaction, contract: str, receive_address: str) -> Iterable[int]:
    """The values of ``contract``'s Transfer logs to the receive address in this transaction."""
    receive_address = receive_address.lower()
    for log in tx.logs:
        if log.address == contract and _is_transfer(log) and _recipient(log) == receive_address:
            yield int.from_bytes(log.data[:32], "big")


def _is_transfer(log: Log) -> bool:
    # ERC-721 shares the topic but indexes its third argument: four topics, no data.
    return (len(log.topics) == 3 and log.topics[0] == TRANSFER_TOPIC and len(log.data) == 32)


def _recipient(log: Log) -> str:
    return "0x" + log.topics[2][-20:].hex()
