"""Whether a mined transaction pays a session: the on-chain money rules, pure, no I/O.

The worker reads the transaction (confirmed, re-read at the threshold) and the session, then
asks :func:`judge` whether it counts for the session: only a transfer to **the session's own
deposit address** does. Native ``eth``: the transaction's ``to`` is that address, and its value
is what it brings. An ERC-20 token: ``Transfer`` logs emitted by exactly the configured
contract to that address — the receipt's status alone proves nothing (some tokens return
``false`` instead of reverting), and a look-alike contract's log is ignored. Transfers that
count are claimed for the session and added up; :func:`tally` says whether their sum pays it.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NATIVE = "eth"
TRANSFER_TOPIC = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

# Anomaly kinds of an on-chain check (docs/api.md, GET /admin/anomalies).
REVERTED = "reverted"
TOO_OLD = "too_old"
WRONG_RECIPIENT = "wrong_recipient"
WRONG_TOKEN = "wrong_token"
UNDERPAID = "underpaid"
OVERPAID = "overpaid"
REUSED = "reused"
NOT_FOUND = "not_found"
UNCONFIRMED = "unconfirmed"
NO_DEPOSIT_ADDRESS = "no_deposit_address"  # a session created before deposit addresses


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
    address: str  # the session's own deposit address
    token: str | None
    not_before: int  # the session's creation second (Unix time)


@dataclass(frozen=True)
class Verdict:
    """Whether a transaction counts for the session (it brings ``received`` > 0 to the
    session's address, by the rules), or the anomaly saying why not."""

    counts: bool
    received: int = 0
    anomaly: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tally:
    """What the session's counted transfers add up to: whether they pay it, and the anomaly
    (underpaid: the session waits for the rest; overpaid: paid all the same)."""

    paid: bool
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
               else _token_refusal(tx, expected.token, expected.address))
    if refusal is not None:
        return refusal
    received = (tx.value if expected.token is None
                else sum(_transfers_to(tx, expected.token, expected.address)))
    if received == 0:  # nothing to claim: the transaction brought the session nothing
        return Verdict(False, 0, UNDERPAID, {"expected": expected.amount, "received": 0})
    return Verdict(True, received)


def tally(amount: int, received: int) -> Tally:
    """``received``, the sum of every transfer counted for the session, against ``amount``."""
    amounts = {"expected": amount, "received": received}
    if received < amount:
        return Tally(False, UNDERPAID, amounts)
    if received > amount:
        return Tally(True, OVERPAID, amounts)
    return Tally(True)


def _native_refusal(tx: MinedTransaction, wanted: Expected) -> Verdict | None:
    if tx.to != wanted.address.lower():
        return Verdict(False, anomaly=WRONG_RECIPIENT, details={"recipient": tx.to})
    return None


def _token_refusal(tx: MinedTransaction, contract: str, address: str) -> Verdict | None:
    if any(True for _ in _transfers_to(tx, contract, address)):
        return None
    address = address.lower()
    transfers = [(log.address, _recipient(log)) for log in tx.logs if _is_transfer(log)]
    look_alikes = sorted({emitter for emitter, to in transfers if to == address})
    if look_alikes:
        return Verdict(False, anomaly=WRONG_TOKEN, details={"token_contracts": look_alikes})
    recipients = sorted({to for emitter, to in transfers if emitter == contract})
    if recipients:
        return Verdict(False, anomaly=WRONG_RECIPIENT, details={"recipients": recipients})
    return Verdict(False, anomaly=WRONG_TOKEN, details={"token_contracts": []})


def _transfers_to(tx: MinedTransaction, contract: str, address: str) -> Iterable[int]:
    """The values of ``contract``'s Transfer logs to ``address`` in this transaction."""
    address = address.lower()
    for log in tx.logs:
        if log.address == contract and _is_transfer(log) and _recipient(log) == address:
            yield int.from_bytes(log.data[:32], "big")


def _is_transfer(log: Log) -> bool:
    # ERC-721 shares the topic but indexes its third argument: four topics, no data.
    return (len(log.topics) == 3 and log.topics[0] == TRANSFER_TOPIC and len(log.data) == 32)


def _recipient(log: Log) -> str:
    return "0x" + log.topics[2][-20:].hex()
