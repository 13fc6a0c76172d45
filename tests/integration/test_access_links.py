"""access_link.issue and email.send on both databases: the link's JWT, one link per session,
and exactly one e-mail to the customer through a real SMTP peer (aiosmtpd on loopback)."""

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from payhook import clock
from payhook.crypto import derive_key
from payhook.db.tables import checkout_sessions
from payhook.domain.decisions import ACCESS_LINK, EMAIL
from tests.conftest import SECRET_KEY
from tests.e2e.conftest import free_port
from tests.paying import drain, outbox_rows, paid_session, rerun, session_row
from tests.smtp_inbox import running_inbox

CUSTOMER = "customer@shop.example"


@pytest.fixture
def inbox():
    with running_inbox() as handler:
        yield handler


@pytest.fixture
def mailing(settings, inbox):
    """The worker's settings with PAYHOOK_SMTP_URL pointing at the inbox."""
    return settings.model_copy(update={"smtp_url": inbox.url})


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_the_link_is_a_jwt_for_this_session_only(client, app, settings, merchant):
    session_id = await paid_session(client, merchant.id)
    await drain(app, settings.model_copy(update={"access_link_days": 3}))
    row = await session_row(app, session_id)
    assert row.customer_access_url.startswith(f"http://payhook.test/access/{session_id}?token=")
    token = token_of(row.customer_access_url)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, derive_key(SECRET_KEY, "access-links"), algorithms=["HS256"],
                        audience="payhook:access", issuer="payhook")
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp", "jti"}
    assert claims["sub"] == session_id and claims["exp"] - claims["iat"] == 3 * 86_400
    assert abs(claims["iat"] - clock.now().timestamp()) < 60
    assert row.customer_access_expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    # Signed with the key derived for links only: not the secret itself, nor another purpose's.
    for other in (SECRET_KEY.encode(), derive_key(SECRET_KEY, "api-key-hash")):
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, other, algorithms=["HS256"], audience="payhook:access")
    seen = (await client.get(f"/v1/checkout/sessions/{session_id}",
                             headers=merchant.headers)).json()
    assert seen["customer_access"] == {"url": row.customer_access_url,
                                       "expires_at": clock.iso(row.customer_access_expires_at)}


async def test_the_customer_gets_one_email_with_the_link(client, app, mailing, merchant, inbox,
                                                         caplog):
    # As configured in production (observability.configure_logging): payhook at any level,
    # drivers at INFO and above (their DEBUG lines echo statement parameters).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="payhook")
    session_id = await paid_session(client, merchant.id, customer_email=CUSTOMER,
                                    customer_name="Ada")
    await drain(app, mailing)
    row = await session_row(app, session_id)
    [message] = inbox.messages()
    assert inbox.envelopes[0].rcpt_tos == [CUSTOMER]
    assert (message["To"], message["From"]) == (CUSTOMER, "shop@payhook.test")
    body = message.get_body(("plain",)).get_content()
    assert row.customer_access_url in body and "Hello Ada," in body
    assert row.email_sent_at is not None
    assert [entry.status for entry in await outbox_rows(app, EMAIL)] == ["done"]
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records
                       if not record.name.startswith("mail"))  # the test's own SMTP server
    assert token_of(row.customer_access_url) not in logged


async def test_rerunning_the_link_and_the_email_changes_nothing(client, app, mailing, merchant,
                                                                inbox):
    session_id = await paid_session(client, merchant.id, customer_email=CUSTOMER)
    await drain(app, mailing)
    before = await session_row(app, session_id)
    await rerun(app, mailing, ACCESS_LINK, EMAIL)
    after = await session_row(app, session_id)
    assert after.customer_access_url == before.customer_access_url
    assert after.customer_access_expires_at == before.customer_access_expires_at
    assert after.email_sent_at == before.email_sent_at
    assert len(inbox.envelopes) == 1
    assert [entry.status for entry in await outbox_rows(app, EMAIL)] == ["done"]


async def test_no_email_without_a_customer_address(client, app, mailing, merchant, inbox):
    session_id = await paid_session(client, merchant.id)
    await drain(app, mailing)
    assert (await session_row(app, session_id)).customer_access_url is not None
    assert await outbox_rows(app, EMAIL) == [] and inbox.envelopes == []


async def test_no_email_without_an_smtp_url(client, app, settings, merchant):
    assert settings.smtp_url is None
    session_id = await paid_session(client, merchant.id, customer_email=CUSTOMER)
    await drain(app, settings)
    row = await session_row(app, session_id)
    assert row.customer_access_url is not None and row.email_sent_at is None
    assert await outbox_rows(app, EMAIL) == []


async def test_an_unreachable_smtp_server_is_retried_without_leaking_the_link(
        client, app, settings, merchant):
    down = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})
    session_id = await paid_session(client, merchant.id, customer_email=CUSTOMER)
    await drain(app, down)
    row = await session_row(app, session_id)
    [entry] = await outbox_rows(app, EMAIL)
    assert entry.status in ("pending", "dead") and entry.last_error
    assert row.email_sent_at is None
    assert token_of(row.customer_access_url) not in str(entry.errors)


async def test_one_email_that_cannot_be_sent_fails_alone(client, app, mailing, merchant,
                                                         other_merchant, inbox):
    """Two merchants' e-mails in one batch; one session's address, changed behind the API's
    back, holds a header injection: that message fails on its own row, the other is sent."""
    broken = await paid_session(client, merchant.id, customer_email=CUSTOMER)
    await paid_session(client, other_merchant.id, customer_email="other@shop.example")
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(checkout_sessions.update().where(checkout_sessions.c.id == broken)
                           .values(customer_email=f"{CUSTOMER}\r\nBcc: spy@evil.example"))
    await drain(app, mailing)

    assert [message["To"] for message in inbox.messages()] == ["other@shop.example"]
    rows = {row.payload["session_id"]: row for row in await outbox_rows(app, EMAIL)}
    failed = rows.pop(broken)
    assert failed.status in ("pending", "dead") and "line break" in failed.last_error
    assert [row.status for row in rows.values()] == ["done"]
    assert (await session_row(app, broken)).email_sent_at is None
