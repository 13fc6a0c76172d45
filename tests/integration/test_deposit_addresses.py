"""Deposit addresses over HTTP, on PostgreSQL and on the SQLite default: every crypto session gets
the next index of the counter and the address the tests' wallet derives at it; the session
object, its public status and the hosted page show where to pay. (That the addresses are the
wallet's own accounts is shown against anvil, in test_onchain.py.)"""

import asyncio

import pytest
from sqlalchemy import func, select

from payhook.db.tables import checkout_sessions, counters
from payhook.domain.deposits import parse_account
from tests import wallet
from tests.conftest import ADMIN_TOKEN, make_settings

SESSIONS = "/v1/checkout/sessions"
TOKEN = "0x" + "5a" * 20
ADDRESSES = parse_account(wallet.XPUB)


@pytest.fixture
def deposit_key(request) -> str | None:
    """The configured PAYHOOK_WEB3_XPUB: the tests' wallet unless a test names another."""
    return getattr(request, "param", wallet.XPUB)


@pytest.fixture
def settings(database_url, deposit_key):
    unset = {} if deposit_key else {"web3_xpub": None, "web3_chain_id": None}
    return make_settings(database_url, web3_tokens=f"usdt:{TOKEN.upper().replace('0X', '0x')}:6",
                         **unset)


async def create(client, merchant, amount: int = 10**15, currency: str = "eth", **headers: str):
    return await client.post(SESSIONS, json={"amount": amount, "currency": currency},
                             headers={**merchant.headers, **headers})


async def allocated(app) -> list[tuple[int | None, str | None]]:
    async with app.state.payhook.engine.connect() as conn:
        return [(row.deposit_index, row.deposit_address) for row in await conn.execute(
            select(checkout_sessions.c.deposit_index, checkout_sessions.c.deposit_address)
            .order_by(checkout_sessions.c.deposit_index))]


async def counter(app) -> int:
    async with app.state.payhook.engine.connect() as conn:
        return int(await conn.scalar(select(counters.c.value)
                                     .where(counters.c.name == "deposit_index")))


async def test_a_crypto_session_carries_where_to_pay_it(client, merchant):
    eth = (await create(client, merchant, 10**30)).json()
    token = (await create(client, merchant, 5_000_000, "usdt")).json()
    fiat = (await create(client, merchant, 1999, "usd")).json()
    assert eth["crypto_payment"] == {
        "chain_id": wallet.CHAIN_ID, "asset": "eth", "contract": None,
        "address": ADDRESSES.address(0), "amount": str(10**30)}  # a string: exact past 2^53
    assert token["crypto_payment"] == {
        "chain_id": wallet.CHAIN_ID, "asset": "usdt", "contract": TOKEN,
        "address": ADDRESSES.address(1), "amount": "5000000"}
    assert fiat["crypto_payment"] is None
    again = await client.get(f"{SESSIONS}/{eth['id']}", headers=merchant.headers)
    assert again.json()["crypto_payment"] == eth["crypto_payment"]


async def test_the_hosted_page_shows_the_address_and_a_payment_uri(client, merchant):
    eth = (await client.post(SESSIONS, headers=merchant.headers, json={
        "amount": 10**15, "currency": "eth", "customer_email": "private@customer.example",
        "metadata": {"order": "internal-42"}})).json()
    token = (await create(client, merchant, 5_000_000, "usdt")).json()
    assert eth["url"] == f"http://payhook.test/session/{eth['id']}/status"

    status = (await client.get(f"/session/{eth['id']}/status")).json()
    address = ADDRESSES.address(0)
    assert status["crypto_payment"] == {
        **eth["crypto_payment"],
        "uri": f"ethereum:{address}@{wallet.CHAIN_ID}?value={10**15}"}
    page = await client.get(f"/session/{eth['id']}/status")
    assert "private@customer.example" not in page.text and "internal-42" not in page.text
    status = (await client.get(f"/session/{token['id']}/status")).json()
    assert status["crypto_payment"]["uri"] == (
        f"ethereum:{TOKEN}@{wallet.CHAIN_ID}/transfer?address={ADDRESSES.address(1)}"
        f"&uint256=5000000")


async def test_two_hundred_concurrent_creations_get_two_hundred_indexes_in_order(
        client, app, merchant, other_merchant):
    """Two merchants, interleaved with fiat sessions (which take no index): every index from
    0 is handed out once, and each address is the wallet's at that index."""
    answers = await asyncio.gather(*(
        create(client, (merchant, other_merchant)[n % 2]) for n in range(200)),
        *(create(client, merchant, 500, "eur") for _ in range(20)))
    assert {answer.status_code for answer in answers} == {201}
    rows = await allocated(app)
    indexes = [index for index, _ in rows if index is not None]
    assert indexes == list(range(200))
    assert [address for index, address in rows if index is not None] == [
        ADDRESSES.address(index) for index in range(200)]
    assert sum(1 for index, address in rows if index is None and address is None) == 20
    assert await counter(app) == 200
    shown = {answer.json()["crypto_payment"]["address"] for answer in answers[:200]}
    assert len(shown) == 200


async def test_a_replayed_idempotent_create_takes_no_second_index(client, app, merchant):
    first = await create(client, merchant, **{"Idempotency-Key": "order-7"})
    burst = await asyncio.gather(*(create(client, merchant, **{"Idempotency-Key": "order-8"})
                                   for _ in range(8)))
    again = await create(client, merchant, **{"Idempotency-Key": "order-7"})
    assert again.json() == first.json()
    assert len({answer.json()["crypto_payment"]["address"] for answer in burst}) == 1
    assert await allocated(app) == [(0, ADDRESSES.address(0)), (1, ADDRESSES.address(1))]
    assert await counter(app) == 2  # the burst's losers gave theirs back: none is skipped


async def test_an_operator_created_crypto_session_gets_its_address_too(client, app, merchant):
    answer = await client.post("/admin/checkout/sessions", headers={
        "Authorization": f"Bearer {ADMIN_TOKEN}"}, json={
        "merchant_id": merchant.id, "mode": "live", "amount": 7, "currency": "eth"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["crypto_payment"]["address"] == ADDRESSES.address(0)


@pytest.mark.parametrize("deposit_key", [None], indirect=True)
@pytest.mark.parametrize("currency", ["eth", "usdt"])
async def test_without_a_deposit_key_crypto_sessions_are_refused(client, app, merchant,
                                                                 currency):
    answer = await create(client, merchant, 10**15, currency)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "parameter_invalid", "currency")
    if currency == "eth":
        assert "PAYHOOK_WEB3_XPUB" in error["message"]
    fiat = await create(client, merchant, 1999, "usd")
    assert fiat.status_code == 201 and fiat.json()["crypto_payment"] is None
    async with app.state.payhook.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(checkout_sessions)) == 1
    assert await counter(app) == 0
