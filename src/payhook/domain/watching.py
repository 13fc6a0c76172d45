"""What watching the chain finds: the rules of following blocks from a cursor, pure, no I/O.

The worker reads blocks after its cursor (the last block it read, and that block's hash) in
steps of at most :data:`MAX_STEP_BLOCKS`. A step is trusted only if its first block's parent is
the cursor's block: otherwise the chain was reorganised below the cursor, and the watcher steps
back (:func:`rewind_to`) and reads again. In a step, a native transfer is a transaction to a
watched ``eth`` address, a token transfer is a configured token's ``Transfer`` log to a watched
address of that token's sessions; each is a :class:`Find` of (session, transaction), which the
on-chain check then judges (confirmations, amount) — the watcher only finds.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_STEP_BLOCKS = 500  # one eth_getLogs call covers at most this many blocks
# A first start (no cursor yet) reads this many blocks back from the head, never from genesis.
START_BLOCKS = 128
# Above this many watched token addresses, eth_getLogs asks for every Transfer of the configured
# tokens and the recipients are filtered here: one call per step however many sessions are open
# (a node's filter limits are not reached), at the price of a larger answer.
MAX_RECIPIENT_TOPICS = 1000


@dataclass(frozen=True)
class Cursor:
    number: int
    hash: str  # lowercase 0x-hex


@dataclass(frozen=True)
class NativeTransfer:
    tx_hash: str
    to: str  # lowercase 0x-hex
    value: int


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    transfers: tuple[NativeTransfer, ...] = ()  # read only when eth addresses are watched


@dataclass(frozen=True)
class TokenTransfer:
    tx_hash: str
    contract: str  # lowercase 0x-hex: the log's emitter
    to: str
    value: int


@dataclass(frozen=True)
class Watched:
    """The open sessions' addresses: ``native`` {address: session} for ``eth`` sessions,
    ``tokens`` {contract: {address: session}} for the configured tokens' sessions."""

    native: Mapping[str, str]
    tokens: Mapping[str, Mapping[str, str]]

    def token_recipients(self) -> list[str] | None:
        """The recipients to filter ``Transfer`` logs on, or None for all of them."""
        recipients = sorted({address for by in self.tokens.values() for address in by})
        return recipients if len(recipients) <= MAX_RECIPIENT_TOPICS else None


@dataclass(frozen=True)
class Find:
    session_id: str
    tx_hash: str


def start_at(head: int) -> int:
    """Where a watcher with no cursor begins (the block after it is the first read)."""
    return max(0, head - START_BLOCKS)


def step(cursor: Cursor, head: int) -> tuple[int, int] | None:
    """The blocks to read next, first and last; None when the cursor is at the head."""
    if head <= cursor.number:
        return None
    return cursor.number + 1, min(head, cursor.number + MAX_STEP_BLOCKS)


def rewind_to(cursor: Cursor, head: int, confirmations: int) -> int:
    """Where to read again from after a reorg below the cursor: as deep as a payment needs
    confirmations (deeper than that the check itself holds nothing as paid), never past the
    head (a chain may come back shorter)."""
    return max(0, min(head, cursor.number) - max(confirmations, 1))


def follows(cursor: Cursor, blocks: Sequence[Block]) -> bool:
    """Whether ``blocks`` (ascending) continue the cursor's chain: the first block's parent is
    the cursor's block, and each read block whose parent was read too links to it."""
    if not blocks or blocks[0].parent_hash != cursor.hash:
        return False
    by_number = {block.number: block for block in blocks}
    return all(by_number[block.number - 1].hash == block.parent_hash
               for block in blocks if block.number - 1 in by_number)


def finds(blocks: Iterable[Block], transfers: Iterable[TokenTransfer],
          watched: Watched) -> list[Find]:
    """The (session, transaction) pairs a step found, each once. A transfer of nothing is no
    payment (and zero-value token transfers are how address poisoning looks)."""
    found: dict[Find, None] = {}
    for block in blocks:
        for native in block.transfers:
            if native.to in watched.native and native.value > 0:
                found[Find(watched.native[native.to], native.tx_hash)] = None
    for token in transfers:
        session_id = watched.tokens.get(token.contract, {}).get(token.to)
        if session_id is not None and token.value > 0:
            found[Find(session_id, token.tx_hash)] = None
    return list(found)


def topic(address: str) -> str:
    """An address as an indexed event argument (32 bytes, left-padded)."""
    return "0x" + "0" * 24 + address.removeprefix("0x").lower()
