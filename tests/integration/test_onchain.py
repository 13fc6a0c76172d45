"""Web3 payments verified on chain, against a real local node (anvil), on both databases.

Every test posts a signed Web3 notice for a session, then drains the outbox by hand with the
real handler registry: the notice is only a hint, the chain decides. Each crypto session has
its own deposit address, derived from the tests' wallet (anvil's default mnemonic), so session
i of a test pays into anvil's dev account i, and payments come from other accounts. One anvil
serves the module; each test starts from the same snapshot (tokens deployed, nothing else).
"""

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select, update

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.tables import (
    anomalies,
    checkout_sessions,
    invoices,
    merchants,
    onchain_payments,
    webhook_events,
)
from payhook.db.tables import outbox_entries as outbox
from payhook.domain.deposits import parse_account
from payhook.domain.events import Intent, ProviderEvent
from payhook.effects import HANDLERS, ORDER
from payhook.effects.context import EffectContext
from payhook.effects.onchain import (
    NOT_FOUND_GIVE_UP,
    NOT_FOUND_MAX_WAIT,
    RECHECK_SECONDS,
    check_node,
)
from payhook.ingest.portable import PortableWriter
from payhook.ingest.postgres import PostgresWriter
from payhook.outbox.drain import Drainer
from payhook.outbox.retry import RetryPolicy
from payhook.runtime.pump import Pump
from tests import signing, wallet
from tests.anvil import (
    CHAIN_ID,
    DEV_ACCOUNTS,
    Anvil,
    CountingProxy,
    Node,
    free_port,
    new_account,
    transfer_call,
)
from tests.conftest import make_settings
from tests.paying import ADMIN, drain, session_row

CONFIRMATIONS = 3
WEI = 10**15  # the eth sessions' amount: 0.001 eth
UNITS = 5_000_000  # the token sessions' amount: 5 usdt (6 decimals)
CHECK = "onchain.check"
NEVER_MINED = "0x" + "ab" * 32  # a transaction no node will ever know


@dataclass
class World:
    node: Node
    payer: LocalAccount
    token: str
    look_alike: str
    base: str  # the snapshot each test starts from
    accounts: list[str]  # anvil's dev accounts, lowercase: the deposit addresses 0, 1, …


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    try:
        anvil = Anvil.start()
    except FileNotFoundError as missing:
        pytest.exit(str(missing), returncode=3)
    try:
        node = anvil.node
        payer = new_account(node)
        token = node.deploy_token(payer, "USDT", 10**15)
        look_alike = node.deploy_token(payer, "USDT", 10**15)  # same code, another address
        accounts = [address.lower() for address in node.call("eth_accounts")]
        yield World(node, payer, token, look_alike, node.snapshot(), accounts)
    finally:
        anvil.stop()


@pytest.fixture
def chain(world: World) -> Iterator[Node]:
    yield world.node
    world.node.revert(world.base)
    world.base = world.node.snapshot()


@pytest.fixture
def settings(database_url, world):
    return make_settings(
        database_url, web3_rpc_url=world.node.url, web3_chain_id=CHAIN_ID,
        web3_confirmations=CONFIRMATIONS, web3_tokens=f"usdt:{world.token}:6")


async def new_session(client, merchant, currency: str = "eth", amount: int = WEI) -> str:
    return (await open_session(client, merchant, currency, amount))[0]


async def open_session(client, merchant, currency: str = "eth",
                       amount: int = WEI) -> tuple[str, str]:
    """A new session's id and its deposit address."""
    answer = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                               json={"amount": amount, "currency": currency})
    assert answer.status_code == 201, answer.text
    session = answer.json()
    return str(session["id"]), str(session["crypto_payment"]["address"])


async def notify(client, session_id: str, tx_hash: str, kind: str = "payment.detected") -> None:
    raw, headers = signing.signed("web3", signing.web3_event(session_id, kind, tx_hash))
    answer = await client.post("/webhooks/web3", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text


def confirm(chain: Node, blocks: int = CONFIRMATIONS, at: int | None = None) -> None:
    """Mine the mempool into one block (at ``at``, default now) and enough on top of it for
    ``blocks`` confirmations, the transaction's own block counting as the first."""
    chain.mine_at(at)
    if blocks > 1:
        chain.mine(blocks - 1)


async def pay_in(client, chain: Node, session_id: str, sender: LocalAccount, address: str,
                 wei: int) -> str:
    """``wei`` sent to ``address``, confirmed, and a notice naming the session: the hash."""
    tx_hash = chain.send(sender, address, wei)
    confirm(chain)
    await notify(client, session_id, tx_hash)
    return tx_hash


async def invoice_count(app) -> int:
    async with app.state.payhook.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(invoices)))


async def recheck(app, settings) -> None:
    """Time passes: the postponed checks are due again."""
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox).where(outbox.c.status == "pending")
                           .values(next_attempt_at=clock.now()))
    await drain(app, settings)


async def expire(app, session_id: str) -> None:
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(checkout_sessions).where(checkout_sessions.c.id == session_id)
                           .values(expires_at=clock.now() - timedelta(seconds=1)))


async def outbox_errors(app) -> list[tuple[str, str, list]]:
    """Each outbox row's kind, status and errors: what a failed assertion should show."""
    async with app.state.payhook.engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(
            select(outbox.c.kind, outbox.c.status, outbox.c.errors))]


async def notes(app, session_id: str) -> list[tuple[str, dict]]:
    async with app.state.payhook.engine.connect() as conn:
        rows = (await conn.execute(select(anomalies).where(anomalies.c.session_id == session_id)
                                   .order_by(anomalies.c.created_at))).all()
    assert all(row.provider == "web3" and row.event_id for row in rows)
    return [(row.kind, row.details) for row in rows]


async def checks(app) -> list:
    async with app.state.payhook.engine.connect() as conn:
        return list((await conn.execute(select(outbox).where(outbox.c.kind == CHECK))).all())


async def payments(app) -> list:
    async with app.state.payhook.engine.connect() as conn:
        return list((await conn.execute(select(onchain_payments))).all())


async def assert_unpaid_with(app, session_id: str, tx_hash: str, kind: str) -> dict:
    """The session still waits for its money; the check is over, with one anomaly naming the
    session and the transaction."""
    row = await session_row(app, session_id)
    assert (row.status, row.paid_at) == ("pending", None)
    [(noted, details)] = await notes(app, session_id)
    assert noted == kind and details["transaction"] == tx_hash.lower()
    assert [entry.status for entry in await checks(app)] == ["done"]
    assert await payments(app) == []
    return details


def test_deposit_address_i_is_the_wallets_account_i(world):
    """The addresses payhook derives from the xpub are the accounts anvil made from the
    mnemonic (and eth-account, a third derivation, agrees): the merchant holds their keys."""
    account = parse_account(wallet.XPUB)
    derived = [account.address(index) for index in range(len(world.accounts))]
    assert len(derived) == DEV_ACCOUNTS and derived == world.accounts
    Account.enable_unaudited_hdwallet_features()
    assert derived[:3] == [Account.from_mnemonic(
        wallet.ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").address.lower()
        for index in range(3)]


async def test_sessions_are_given_the_wallets_accounts_in_order(client, merchant,
                                                                other_merchant, world):
    addresses = [(await open_session(client, who))[1]
                 for who in (merchant, other_merchant, merchant)]
    assert addresses == world.accounts[:3]


async def test_eth_payment_is_paid_with_every_effect(client, app, settings, merchant, chain,
                                                     world):
    session_id, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI)
    confirm(chain)
    await notify(client, session_id, tx_hash, "payment.detected")
    await notify(client, session_id, tx_hash, "payment.confirmed")  # two hints, one payment
    await drain(app, settings)

    row = await session_row(app, session_id)
    assert (row.status, row.payment_provider, row.provider_reference) == (
        "paid", "web3", tx_hash)
    assert row.paid_at is not None and row.customer_access_url
    [payment] = await payments(app)
    receipt = chain.receipt(tx_hash)
    assert (payment.session_id, payment.chain_id, payment.tx_hash, payment.amount) == (
        session_id, CHAIN_ID, tx_hash, WEI)
    assert (payment.block_number, payment.block_hash) == (
        int(receipt["blockNumber"], 16), receipt["blockHash"])
    async with app.state.payhook.engine.connect() as conn:
        invoice = (await conn.execute(select(invoices))).one()
    assert (invoice.session_id, invoice.provider_reference) == (session_id, tx_hash)
    assert [entry.status for entry in await checks(app)] == ["done"]  # two hints, one check
    assert await notes(app, session_id) == []


async def test_too_few_confirmations_are_rechecked_then_paid(client, app, settings, merchant,
                                                             chain, world):
    session_id, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI)
    confirm(chain, blocks=CONFIRMATIONS - 1)
    await notify(client, session_id, tx_hash)
    await drain(app, settings)

    [entry] = await checks(app)
    assert (entry.status, entry.attempts, entry.last_error) == (
        "pending", 0, f"{CONFIRMATIONS - 1} of {CONFIRMATIONS} confirmations")
    assert entry.next_attempt_at - clock.now() <= timedelta(seconds=RECHECK_SECONDS)
    assert (await session_row(app, session_id)).status == "pending"
    await recheck(app, settings)
    assert (await session_row(app, session_id)).status == "pending"  # still 2 of 3

    chain.mine(1)
    await recheck(app, settings)
    assert (await session_row(app, session_id)).status == "paid"
    assert await notes(app, session_id) == []


async def test_a_reorg_that_drops_the_transaction_pays_nothing(client, app, settings, merchant,
                                                               chain, world):
    session_id, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI)
    before = chain.snapshot()
    confirm(chain, blocks=CONFIRMATIONS - 1)
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    assert (await session_row(app, session_id)).status == "pending"

    chain.revert(before)  # the transaction's block is orphaned, the transaction gone
    chain.mine(CONFIRMATIONS + 2)
    await recheck(app, settings)
    [entry] = await checks(app)
    assert (entry.status, entry.attempts) == ("pending", 0)  # not found: still looked for

    await expire(app, session_id)
    await recheck(app, settings)
    details = await assert_unpaid_with(app, session_id, tx_hash, "not_found")
    assert details["chain_id"] == CHAIN_ID


async def test_a_payment_to_another_address_is_a_wrong_recipient(client, app, settings,
                                                                 merchant, chain, world):
    session_id = await new_session(client, merchant)
    elsewhere = Account.create().address
    tx_hash = chain.send(world.payer, elsewhere, WEI)
    confirm(chain)
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    details = await assert_unpaid_with(app, session_id, tx_hash, "wrong_recipient")
    assert details["recipient"] == elsewhere.lower()


async def test_a_reverted_transaction_pays_nothing(client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant, "usdt", UNITS)
    broke = new_account(chain)  # has eth for gas, no tokens: the transfer reverts
    tx_hash = chain.send(broke, world.token, data=transfer_call(address, UNITS), gas=100_000)
    confirm(chain)
    assert chain.receipt(tx_hash)["status"] == "0x0"
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    await assert_unpaid_with(app, session_id, tx_hash, "reverted")


async def test_a_transaction_mined_before_the_session_is_too_old(client, app, settings,
                                                                 merchant, chain, world):
    tx_hash = chain.send(world.payer, world.accounts[0], WEI)  # the next session's address
    confirm(chain, at=int(clock.now().timestamp()) - 60)
    session_id, address = await open_session(client, merchant)
    assert address == world.accounts[0]
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    details = await assert_unpaid_with(app, session_id, tx_hash, "too_old")
    assert details["block_timestamp"] < details["session_created"]


async def test_an_underpayment_leaves_the_session_pending_with_its_claim(
        client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI - 1)
    confirm(chain)
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    row = await session_row(app, session_id)
    assert (row.status, row.paid_at) == ("pending", None)
    [(kind, details)] = await notes(app, session_id)
    assert (kind, details["expected"], details["received"], details["transferred"]) == (
        "underpaid", WEI, WEI - 1, WEI - 1)
    # claimed for this session: the transfer adds to the next, and never pays another session
    assert [(payment.session_id, payment.amount) for payment in await payments(app)] == [
        (session_id, WEI - 1)]


async def test_a_payment_split_in_two_transfers_is_paid_at_the_second(
        client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant)
    first = await pay_in(client, chain, session_id, world.payer, address, WEI // 4)
    await drain(app, settings)
    assert (await session_row(app, session_id)).status == "pending"

    payer = new_account(chain)  # from another wallet, even
    second = await pay_in(client, chain, session_id, payer, address, WEI - WEI // 4)
    await drain(app, settings)
    row = await session_row(app, session_id)
    assert (row.status, row.provider_reference) == ("paid", second)
    assert sorted(payment.amount for payment in await payments(app)) == sorted(
        [WEI // 4, WEI - WEI // 4])
    [(kind, details)] = await notes(app, session_id)  # the first transfer's, nothing else
    assert (kind, details["transaction"], details["received"]) == ("underpaid", first, WEI // 4)
    assert await invoice_count(app) == 1


async def test_two_transfers_adding_up_past_the_amount_pay_and_are_noted(
        client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant)
    for value in (WEI // 2, WEI):
        await pay_in(client, chain, session_id, world.payer, address, value)
        await drain(app, settings)
    assert (await session_row(app, session_id)).status == "paid"
    kinds = [(kind, details["received"]) for kind, details in await notes(app, session_id)]
    assert kinds == [("underpaid", WEI // 2), ("overpaid", WEI + WEI // 2)]


async def test_two_halves_settled_at_once_are_added_up(client, app, settings, merchant, chain,
                                                       world):
    """Each check takes the session's row, then claims its half: the second to take it sees
    the first's committed claim, so the session is paid once, by both together (and the two
    never deadlock on the row the claims' foreign key points to)."""
    session_id, address = await open_session(client, merchant)
    halves = [chain.send(world.payer, address, WEI // 2),
              chain.send(new_account(chain), address, WEI - WEI // 2)]
    confirm(chain)
    await asyncio.gather(*(notify(client, session_id, tx_hash) for tx_hash in halves))
    await drain(app, settings, workers=2, batch_size=1)  # one check each, side by side
    row = await session_row(app, session_id)
    assert row.status == "paid" and row.provider_reference in halves, await outbox_errors(app)
    assert sorted(payment.tx_hash for payment in await payments(app)) == sorted(halves)
    [(kind, details)] = await notes(app, session_id)  # whichever was settled first
    assert (kind, details["received"]) == ("underpaid", details["transferred"])
    assert await invoice_count(app) == 1


async def test_a_transfer_after_the_session_expired_is_a_late_payment(
        client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant)
    tx_hash = await pay_in(client, chain, session_id, world.payer, address, WEI // 2)
    await expire(app, session_id)
    await drain(app, settings)
    assert (await session_row(app, session_id)).paid_at is None
    [(kind, details)] = await notes(app, session_id)
    assert (kind, details["transaction"], details["transferred"]) == (
        "late_payment", tx_hash, WEI // 2)
    # the money came to this session's address: its claim stays for an operator to settle
    assert [payment.session_id for payment in await payments(app)] == [session_id]


async def test_a_late_transfer_short_of_its_confirmations_waits_for_them(
        client, app, settings, merchant, chain, world):
    """The watcher finds a payment at its first block; after the session ended it is still
    waited for, and noted as a late payment once confirmed (not as unconfirmed)."""
    session_id, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI)
    chain.mine_at()  # one confirmation of the required CONFIRMATIONS
    await notify(client, session_id, tx_hash)
    await expire(app, session_id)
    await drain(app, settings)
    [entry] = await checks(app)
    assert entry.status == "pending" and "confirmations" in entry.last_error
    assert await notes(app, session_id) == []

    confirm(chain, blocks=CONFIRMATIONS)
    await recheck(app, settings)
    [(kind, details)] = await notes(app, session_id)
    assert (kind, details["transaction"]) == ("late_payment", tx_hash)
    assert (await session_row(app, session_id)).paid_at is None


async def test_an_overpayment_pays_and_is_noted(client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI + 7)
    confirm(chain)
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    assert (await session_row(app, session_id)).status == "paid"
    [(kind, details)] = await notes(app, session_id)
    assert (kind, details["transaction"], details["expected"], details["received"]) == (
        "overpaid", tx_hash, WEI, WEI + 7)
    assert [payment.amount for payment in await payments(app)] == [WEI + 7]


async def test_an_erc20_transfer_of_the_configured_token_pays(client, app, settings, merchant,
                                                             chain, world):
    session_id, address = await open_session(client, merchant, "usdt", UNITS)
    tx_hash = chain.send(world.payer, world.token, data=transfer_call(address, UNITS),
                         gas=100_000)
    confirm(chain)
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    row = await session_row(app, session_id)
    assert (row.status, row.provider_reference) == ("paid", tx_hash)
    [payment] = await payments(app)
    assert (payment.currency, payment.amount) == ("usdt", UNITS)
    assert await notes(app, session_id) == []


async def test_a_look_alike_token_is_ignored(client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant, "usdt", UNITS)
    tx_hash = chain.send(world.payer, world.look_alike, data=transfer_call(address, UNITS),
                         gas=100_000)
    confirm(chain)
    assert chain.receipt(tx_hash)["status"] == "0x1"  # a real Transfer, from the wrong contract
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    details = await assert_unpaid_with(app, session_id, tx_hash, "wrong_token")
    assert details["token_contracts"] == [world.look_alike.lower()]


async def test_a_node_on_another_chain_runs_no_check(client, app, settings, merchant, chain,
                                                     world):
    session_id, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI)
    confirm(chain)
    await notify(client, session_id, tx_hash)
    engine = app.state.payhook.engine
    context = EffectContext.build(settings.model_copy(update={"web3_chain_id": CHAIN_ID + 1}),
                                  engine)
    try:
        await Drainer(engine, HANDLERS, context, RetryPolicy(60), order=ORDER).drain()
    finally:
        await context.close()

    [entry] = await checks(app)
    assert (entry.status, entry.attempts) == ("pending", 1)  # a failed attempt, retried
    assert f"serves chain {CHAIN_ID}" in entry.last_error
    assert (await session_row(app, session_id)).status == "pending"
    assert await notes(app, session_id) == [] and await payments(app) == []

    await recheck(app, settings)  # the node is right again
    assert (await session_row(app, session_id)).status == "paid"


async def test_a_transaction_never_found_is_noted_when_the_session_expires(
        client, app, settings, merchant, chain):
    session_id = await new_session(client, merchant)
    tx_hash = NEVER_MINED
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    await recheck(app, settings)
    [entry] = await checks(app)
    assert (entry.status, entry.attempts) == ("pending", 0)
    await expire(app, session_id)
    await recheck(app, settings)
    await assert_unpaid_with(app, session_id, tx_hash, "not_found")


async def test_a_transaction_pays_one_session_only(client, app, settings, merchant, chain,
                                                   world):
    first, address = await open_session(client, merchant)
    tx_hash = chain.send(world.payer, address, WEI)
    confirm(chain)
    await notify(client, first, tx_hash)
    await drain(app, settings)
    second = await new_session(client, merchant)
    await notify(client, second, tx_hash)
    await drain(app, settings)
    assert (await session_row(app, first)).status == "paid"
    assert (await session_row(app, second)).status == "pending"
    assert await notes(app, second) == [("reused", {
        "transaction": tx_hash, "chain_id": CHAIN_ID, "paid_session": first})]


async def test_a_notice_naming_another_session_pays_nothing(
        client, app, settings, merchant, other_merchant, chain, world):
    """The attack that shared addresses allowed: merchant B's 1-wei session and a notice naming
    it with the transaction that paid merchant A's 1-eth session. Only the session whose address
    received the money is paid, by a notice naming it."""
    b_session, b_address = await open_session(client, other_merchant, amount=1)
    a_session, a_address = await open_session(client, merchant, amount=10**18)
    assert b_address != a_address
    tx_hash = chain.send(world.payer, a_address, 10**18)
    confirm(chain)

    await notify(client, b_session, tx_hash)
    await drain(app, settings)
    assert (await session_row(app, b_session)).status == "pending"
    [(kind, details)] = await notes(app, b_session)
    assert (kind, details["transaction"], details["recipient"]) == (
        "wrong_recipient", tx_hash, a_address)
    assert await payments(app) == []  # not even claimed: it was never B's money

    await notify(client, a_session, tx_hash)
    await drain(app, settings)
    assert (await session_row(app, a_session)).status == "paid"
    assert await notes(app, a_session) == []
    assert [payment.session_id for payment in await payments(app)] == [a_session]
    assert (await session_row(app, b_session)).status == "pending"


async def test_notices_naming_two_sessions_at_once_pay_the_addressed_one(
        client, app, settings, merchant, other_merchant, chain, world):
    sessions = [await open_session(client, merchant), await open_session(client, other_merchant)]
    [(paid, address), (unpaid, _)] = sessions
    tx_hash = chain.send(world.payer, address, WEI)
    confirm(chain)
    await asyncio.gather(*(notify(client, session_id, tx_hash) for session_id, _ in sessions))
    await drain(app, settings, workers=2, batch_size=1)  # one check each, side by side

    assert (await session_row(app, paid)).status == "paid"
    assert (await session_row(app, unpaid)).status == "pending"
    assert await notes(app, paid) == []
    # judged before the claim (wrong recipient), or after it (already used): never paid
    [(kind, _)] = await notes(app, unpaid)
    assert kind in ("wrong_recipient", "reused")
    assert [payment.session_id for payment in await payments(app)] == [paid]


async def test_a_session_from_before_deposit_addresses_is_never_paid(
        client, app, settings, merchant, chain, world):
    session_id, address = await open_session(client, merchant)
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(checkout_sessions).where(checkout_sessions.c.id == session_id)
                           .values(deposit_address=None, deposit_index=None))
    tx_hash = chain.send(world.payer, address, WEI)
    confirm(chain)
    await notify(client, session_id, tx_hash)
    await drain(app, settings)
    await assert_unpaid_with(app, session_id, tx_hash, "no_deposit_address")


async def test_runners_can_check_the_node_at_start_up(world, tmp_path, caplog):
    good = make_settings(f"sqlite+aiosqlite:///{tmp_path}/payhook.db",
                         web3_rpc_url=world.node.url, web3_chain_id=CHAIN_ID)
    wrong_chain = good.model_copy(update={"web3_chain_id": CHAIN_ID + 1})
    no_node = good.model_copy(update={"web3_rpc_url": f"http://127.0.0.1:{free_port()}"})
    engine = create_engine(good.database_url)
    try:
        for settings, answer in ((good, True), (wrong_chain, False), (no_node, False)):
            context = EffectContext.build(settings, engine)
            try:
                assert await check_node(context) is answer
            finally:
                await context.close()
    finally:
        await engine.dispose()
    assert f"serves chain {CHAIN_ID}, not PAYHOOK_WEB3_CHAIN_ID {CHAIN_ID + 1}" in caplog.text
    assert "the web3 node does not answer" in caplog.text


class SimulatedClock:
    """payhook's clock, moved by the test (real time while ``at`` is None): an hour of
    re-checks passes at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.at: datetime | None = None
        real = clock.now
        monkeypatch.setattr(clock, "now", lambda: self.at or real())


async def stored_events(app) -> int:
    async with app.state.payhook.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(webhook_events)))


async def test_twenty_notices_of_one_transaction_leave_one_check(client, app, merchant):
    """Concurrent notices (distinct webhook ids, one session, one transaction), through each
    database's writer (raw asyncpg on PostgreSQL): each is stored, one check is queued."""
    session_id = await new_session(client, merchant)
    await asyncio.gather(*(notify(client, session_id, NEVER_MINED) for _ in range(20)))
    assert await stored_events(app) == 20
    [entry] = await checks(app)
    assert (entry.status, entry.payload["tx_hash"]) == ("pending", NEVER_MINED)

    await notify(client, session_id, "0x" + "cd" * 32)  # another transaction: its own check
    assert len(await checks(app)) == 2


@pytest.mark.parametrize("writer_kind", ["portable", "raw asyncpg"])
async def test_each_writer_queues_one_check_for_concurrent_notices_on_postgresql(
        pg_url, writer_kind):
    engine = create_engine(pg_url)
    crypto = frozenset({"eth"})
    writer = (PortableWriter(engine, 10, crypto) if writer_kind == "portable"
              else await PostgresWriter.connect(pg_url, 10, crypto))
    session_id, now = f"cs_{uuid.uuid4().hex}", clock.now()
    try:
        async with engine.begin() as conn:
            await conn.execute(merchants.insert().values(id="mer_1", name="m", created_at=now))
            await conn.execute(checkout_sessions.insert().values(
                id=session_id, merchant_id="mer_1", mode="test", status="created", amount=WEI,
                currency="eth", metadata={}, created_at=now, updated_at=now,
                expires_at=now + timedelta(hours=1)))
        outcomes = await asyncio.gather(*(writer.record(ProviderEvent(
            provider="web3", event_id=f"msg_{n}", type="payment.detected", intent=Intent.CHECK,
            session_id=session_id, raw=b"{}", headers={}, reference=NEVER_MINED))
            for n in range(20)))
        async with engine.connect() as conn:
            queued = (await conn.execute(select(outbox.c.status, outbox.c.payload)
                                         .where(outbox.c.kind == CHECK))).all()
    finally:
        if isinstance(writer, PostgresWriter):
            await writer.close()
        await engine.dispose()
    assert sorted(outcomes) == ["applied"] + ["recorded"] * 19
    assert [(status, payload["tx_hash"]) for status, payload in queued] == [
        ("pending", NEVER_MINED)]


async def test_a_transaction_never_found_is_looked_for_less_and_less_then_given_up(
        client, app, settings, merchant, monkeypatch):
    session_id = await new_session(client, merchant)
    await notify(client, session_id, NEVER_MINED)
    [entry] = await checks(app)
    simulated = SimulatedClock(monkeypatch)
    looks: list[timedelta] = []  # when each check ran, counted from the first notice
    waits: list[float] = []  # how long each check then waited for the next
    while entry.status == "pending" and len(looks) < 100:
        simulated.at = entry.next_attempt_at  # the worker runs the check when it is due
        looks.append(simulated.at - entry.created_at)
        await drain(app, settings)
        [entry] = await checks(app)
        if entry.status == "pending":
            waits.append((entry.next_attempt_at - simulated.at).total_seconds())
            # what an operator sees meanwhile: why it waits, and no attempt used up
            assert entry.attempts == 0 and entry.last_error.startswith(
                "transaction not found on chain; looked for since")

    assert waits[:8] == [RECHECK_SECONDS, 5, 10, 20, 40, 80, 160, 300]
    assert max(waits) == NOT_FOUND_MAX_WAIT.total_seconds()
    assert looks[-1] == NOT_FOUND_GIVE_UP and len(looks) == 19  # not 720 an hour, for 7 days
    details = await assert_unpaid_with(app, session_id, NEVER_MINED, "not_found")
    assert details["looked_for_seconds"] == NOT_FOUND_GIVE_UP.total_seconds()

    simulated.at = None  # a notice after the check is over starts a new one
    await notify(client, session_id, NEVER_MINED)
    assert sorted(entry.status for entry in await checks(app)) == ["done", "pending"]


async def test_a_dead_check_holds_its_place_until_it_is_replayed(client, app, merchant):
    session_id = await new_session(client, merchant)
    await notify(client, session_id, NEVER_MINED)
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(update(outbox).values(status="dead", last_error="node down"))
    await notify(client, session_id, NEVER_MINED)  # the same check would die the same way
    [entry] = await checks(app)
    answer = await client.post(f"/admin/outbox/{entry.id}/replay", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert [entry.status for entry in await checks(app)] == ["pending"]


async def test_twenty_notices_cost_the_node_a_few_calls(client, app, settings, merchant, world):
    """The worker as it runs, in real time, behind a proxy that counts the node's requests."""
    window = 6.0
    proxy = await CountingProxy(world.node.url).start()
    session_id = await new_session(client, merchant)
    await asyncio.gather(*(notify(client, session_id, NEVER_MINED) for _ in range(20)))
    engine = app.state.payhook.engine
    context = EffectContext.build(settings.model_copy(update={"web3_rpc_url": proxy.url}),
                                  engine)
    pump = Pump(Drainer(engine, HANDLERS, context, RetryPolicy(settings.outbox_backoff_seconds),
                        order=ORDER), settings.outbox_max_attempts)
    try:
        pump.start()
        pump.nudge()
        await asyncio.sleep(window)
    finally:
        await pump.stop()
        await context.close()
        await proxy.stop()
    # One check, at once and again 5 s later — two calls each (chain id, receipt) — where
    # every notice's own check every 5 s made 80.
    assert set(proxy.calls) == {"eth_chainId", "eth_getTransactionReceipt"}
    assert 1 <= proxy.calls["eth_getTransactionReceipt"] <= 2
    assert sum(proxy.calls.values()) <= 4
