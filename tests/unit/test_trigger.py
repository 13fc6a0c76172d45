"""`payhook trigger`'s events: signed so that the providers' own libraries and our verifiers
accept them, shaped after the session, and fresh every time."""

import base64
import json

import pytest
import stripe as stripe_library
from standardwebhooks.webhooks import Webhook

from payhook import trigger
from payhook.domain.events import Intent
from payhook.ids import new_id
from payhook.providers import onecom, stripe, web3
from payhook.providers.base import VerifyContext

SECRETS = {"stripe": "whsec_unit", "onecom": "onecom_unit",
           "web3": "whsec_" + base64.b64encode(b"trigger-unit-test-key-24").decode()}
CS_UNIT = new_id("cs")
SESSION = trigger.Session(id=CS_UNIT, amount=1999, currency="usd", mode="test")
VERIFY = {"stripe": stripe.verify, "onecom": onecom.verify, "web3": web3.verify}


def received(signed: trigger.Signed) -> dict[str, str]:
    return {name.lower(): value for name, value in signed.headers.items()}


@pytest.mark.parametrize(("provider", "intent"), [
    ("stripe", Intent.PAY), ("onecom", Intent.PAY), ("web3", Intent.CHECK)])
def test_the_default_event_verifies_and_names_the_session(provider, intent):
    signed = trigger.build(provider, SESSION, SECRETS[provider])
    context = VerifyContext(secrets=("other", SECRETS[provider]), tolerance=300)
    event = VERIFY[provider](signed.raw, received(signed), context)
    assert (event.intent, event.session_id) == (intent, CS_UNIT)
    assert signed.headers["Content-Type"] == "application/json"
    if provider != "web3":
        assert (event.amount, event.currency) == (1999, "usd")


def test_stripe_events_verify_with_the_stripe_library():
    signed = trigger.build("stripe", SESSION, SECRETS["stripe"])
    stripe_library.WebhookSignature.verify_header(
        signed.raw.decode(), signed.headers["Stripe-Signature"], SECRETS["stripe"], tolerance=300)
    body = json.loads(signed.raw)
    assert body["id"].startswith("evt_") and body["livemode"] is False
    intent = body["data"]["object"]
    assert intent["id"].startswith("pi_") and intent["object"] == "payment_intent"
    assert intent["amount_received"] == 1999 and intent["metadata"] == {"session_id": CS_UNIT}


def test_web3_events_verify_with_the_standard_webhooks_library():
    tx = "0x" + "ab" * 32
    signed = trigger.build("web3", SESSION, SECRETS["web3"], tx_hash=tx)
    assert json.loads(signed.raw) == {"event": "payment.detected", "session_id": CS_UNIT,
                                      "blockchain_tx_id": tx, "network": "ethereum"}
    Webhook(SECRETS["web3"]).verify(signed.raw, received(signed))
    assert signed.headers["webhook-id"].startswith("msg_")


def test_a_live_session_gives_a_livemode_event_and_other_types_their_own_object():
    live = trigger.Session(id="cs_live", amount=500, currency="eur", mode="live")
    charge = json.loads(trigger.build("stripe", live, "whsec_x", event_type="charge.succeeded").raw)
    assert charge["livemode"] is True and charge["type"] == "charge.succeeded"
    assert charge["data"]["object"]["object"] == "charge"
    assert charge["data"]["object"]["amount_captured"] == 500
    failed = json.loads(trigger.build("stripe", live, "whsec_x",
                                      event_type="payment_intent.payment_failed").raw)
    assert failed["data"]["object"]["amount_received"] == 0
    pending = json.loads(trigger.build("onecom", live, "s", event_type="payment.pending").raw)
    assert pending["event"] == "payment.pending" and pending["reference"] == "cs_live"


@pytest.mark.parametrize("provider", ["stripe", "onecom", "web3"])
def test_every_trigger_is_a_new_event(provider):
    first, second = (trigger.build(provider, SESSION, SECRETS[provider]) for _ in range(2))
    context = VerifyContext(secrets=(SECRETS[provider],), tolerance=300)
    ids = {VERIFY[provider](signed.raw, received(signed), context).event_id
           for signed in (first, second)}
    assert len(ids) == 2


def test_a_signature_is_bound_to_its_time():
    signed = trigger.build("onecom", SESSION, SECRETS["onecom"], now=1_700_000_000)
    assert signed.headers["X-Onecom-Timestamp"] == "1700000000"
    assert onecom.sign(signed.raw, SECRETS["onecom"], 1_700_000_001) != {
        name: value for name, value in signed.headers.items() if name != "Content-Type"}
