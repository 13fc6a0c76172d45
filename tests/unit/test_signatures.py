"""Signature verification for each provider, with public vectors and independent signers."""

import base64
import time

import pytest

from payhook.domain.events import UNSTATED, Intent
from payhook.ids import new_id
from payhook.providers import onecom, stripe, web3
from payhook.providers.base import InvalidWebhook, VerifyContext
from tests import signing

STRIPE = VerifyContext(secrets=(signing.STRIPE_SECRET,), tolerance=300)
ONECOM = VerifyContext(secrets=(signing.ONECOM_SECRET,), tolerance=300)
WEB3 = VerifyContext(secrets=(signing.WEB3_SECRET,), tolerance=300)
CS_1, CS_3, CS_9 = new_id("cs"), new_id("cs"), new_id("cs")  # only real-looking ids name one


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


# Stripe ---------------------------------------------------------------------------------------

def test_stripe_accepts_what_the_stripe_package_signs():
    raw, headers = signing.signed("stripe", signing.stripe_event(CS_1))
    event = stripe.verify(raw, lower(headers), STRIPE)
    assert (event.provider, event.intent, event.session_id) == ("stripe", Intent.PAY, CS_1)
    assert (event.amount, event.currency, event.mode) == (1999, "usd", "test")
    assert event.raw == raw and event.reference.startswith("pi_")


def test_stripe_accepts_any_of_several_v1_signatures_and_ignores_v0():
    raw = signing.encode(signing.stripe_event(CS_1))
    good = lower(signing.stripe_headers(raw))["stripe-signature"]
    stamp, v1 = good.split(",")
    header = f"{stamp},v0=deadbeef,v1={'0' * 64},{v1}"
    assert stripe.verify(raw, {"stripe-signature": header}, STRIPE).session_id == CS_1


@pytest.mark.parametrize("offset", [-301, 301, -100_000, 100_000])
def test_stripe_rejects_old_and_future_timestamps(offset):
    raw = signing.encode(signing.stripe_event(CS_1))
    headers = lower(signing.stripe_headers(raw, timestamp=int(time.time()) + offset))
    with pytest.raises(InvalidWebhook, match="tolerance"):
        stripe.verify(raw, headers, STRIPE)


def test_stripe_secret_rotation_accepts_old_and_new():
    rotating = VerifyContext(secrets=("whsec_new", signing.STRIPE_SECRET), tolerance=300)
    for secret in ("whsec_new", signing.STRIPE_SECRET):
        raw = signing.encode(signing.stripe_event(CS_1))
        assert stripe.verify(raw, lower(signing.stripe_headers(raw, secret)), rotating)
    raw = signing.encode(signing.stripe_event(CS_1))
    with pytest.raises(InvalidWebhook):
        stripe.verify(raw, lower(signing.stripe_headers(raw, "whsec_retired")), rotating)


@pytest.mark.parametrize("header", [None, "", "t=abc,v1=00", "v1=00", "t=1", "garbage"])
def test_stripe_rejects_missing_or_malformed_headers(header):
    raw = signing.encode(signing.stripe_event(CS_1))
    headers = {} if header is None else {"stripe-signature": header}
    with pytest.raises(InvalidWebhook):
        stripe.verify(raw, headers, STRIPE)


def test_stripe_rejects_a_tampered_body():
    raw = signing.encode(signing.stripe_event(CS_1, amount=1999))
    headers = lower(signing.stripe_headers(raw))
    with pytest.raises(InvalidWebhook, match="signature"):
        stripe.verify(raw.replace(b"1999", b"1"), headers, STRIPE)


def test_a_provider_without_secrets_refuses_everything():
    raw = signing.encode(signing.stripe_event(CS_1))
    for secret in ("", signing.STRIPE_SECRET):
        headers = lower(signing.stripe_headers(raw, secret or "x"))
        with pytest.raises(InvalidWebhook, match="no webhook secret"):
            stripe.verify(raw, headers, VerifyContext(secrets=(), tolerance=300))


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"type": "x"}', b'{"id": 5}',
                                 b'{"id": "evt_1", "id": "evt_2"}', b'{"id": NaN}'])
def test_stripe_signed_bodies_must_be_objects_with_an_id(raw):
    with pytest.raises(InvalidWebhook):
        stripe.verify(raw, lower(signing.stripe_headers(raw)), STRIPE)


@pytest.mark.parametrize(("kind", "intent"), [
    ("payment_intent.succeeded", Intent.PAY), ("charge.succeeded", Intent.PAY),
    ("payment_intent.processing", Intent.PEND), ("payment_intent.canceled", Intent.FAIL),
    ("payment_intent.payment_failed", Intent.RECORD), ("customer.created", Intent.IGNORE)])
def test_stripe_event_mapping(kind, intent):
    raw, headers = signing.signed("stripe", signing.stripe_event(CS_1, kind=kind, amount=7))
    event = stripe.verify(raw, lower(headers), STRIPE)
    assert event.intent is intent
    if intent is Intent.PAY:
        assert event.amount == 7


def test_stripe_charge_reference_is_its_payment_intent():
    body = signing.stripe_event(CS_1, kind="charge.succeeded")
    raw, headers = signing.signed("stripe", body)
    assert stripe.verify(raw, lower(headers), STRIPE).reference == \
        body["data"]["object"]["payment_intent"]


def test_a_stripe_charge_without_a_payment_intent_is_known_by_its_own_id():
    body = signing.stripe_event("cs_1", kind="charge.succeeded")
    body["data"]["object"]["payment_intent"] = None  # a Charges API charge
    raw, headers = signing.signed("stripe", body)
    event = stripe.verify(raw, lower(headers), STRIPE)
    assert event.reference == body["data"]["object"]["id"] and event.reference.startswith("ch_")


@pytest.mark.parametrize("livemode", ["missing", None, "true", 1, 0, {}])
def test_a_stripe_event_without_a_boolean_livemode_states_no_mode(livemode):
    body = signing.stripe_event("cs_1")
    if livemode == "missing":
        del body["livemode"]
    else:
        body["livemode"] = livemode
    raw, headers = signing.signed("stripe", body)
    assert stripe.verify(raw, lower(headers), STRIPE).mode == UNSTATED


def test_stripe_payment_without_session_id_is_ignored():
    raw, headers = signing.signed("stripe", signing.stripe_event(None))
    assert stripe.verify(raw, lower(headers), STRIPE).intent is Intent.IGNORE


# One.com --------------------------------------------------------------------------------------

def test_onecom_accepts_a_good_signature_and_maps_events():
    for kind, intent in (("payment.completed", Intent.PAY), ("payment.pending", Intent.PEND),
                         ("payment.failed", Intent.FAIL), ("payment.refunded", Intent.IGNORE)):
        raw, headers = signing.signed("onecom", signing.onecom_event(CS_9, kind=kind))
        event = onecom.verify(raw, lower(headers), ONECOM)
        assert (event.intent, event.session_id, event.amount) == (intent, CS_9, 1999)
        assert event.reference.startswith("txn_")


@pytest.mark.parametrize("mutate", [
    lambda h: h.pop("x-onecom-signature"),
    lambda h: h.pop("x-onecom-timestamp"),
    lambda h: h.update({"x-onecom-signature": h["x-onecom-signature"].replace("sha256=", "")}),
    lambda h: h.update({"x-onecom-signature": "sha256=" + "0" * 64}),
    lambda h: h.update({"x-onecom-timestamp": str(int(h["x-onecom-timestamp"]) + 1)}),
    lambda h: h.update({"x-onecom-timestamp": str(int(time.time()) + 1000)}),
])
def test_onecom_rejects_bad_headers(mutate):
    raw, headers = signing.signed("onecom", signing.onecom_event(CS_9))
    headers = lower(headers)
    mutate(headers)
    with pytest.raises(InvalidWebhook):
        onecom.verify(raw, headers, ONECOM)


def test_onecom_rejects_future_timestamps_even_when_signed():
    raw = signing.encode(signing.onecom_event(CS_9))
    headers = lower(signing.onecom_headers(raw, timestamp=int(time.time()) + 301))
    with pytest.raises(InvalidWebhook, match="tolerance"):
        onecom.verify(raw, headers, ONECOM)


# Standard Webhooks (web3) ---------------------------------------------------------------------

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standard_webhooks_vector_verifies():
    age = int(time.time()) - VECTOR_TS + 60
    context = VerifyContext(secrets=(VECTOR_SECRET,), tolerance=age)
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS),
               "webhook-signature": VECTOR_SIGNATURE}
    event = web3.verify(VECTOR_BODY, headers, context)
    assert event.event_id == VECTOR_ID and event.intent is Intent.IGNORE  # not a web3 event
    with pytest.raises(InvalidWebhook, match="tolerance"):
        web3.verify(VECTOR_BODY, headers, VerifyContext(secrets=(VECTOR_SECRET,), tolerance=300))
    tampered = {**headers, "webhook-signature": VECTOR_SIGNATURE.replace("g0h", "g1h")}
    with pytest.raises(InvalidWebhook):
        web3.verify(VECTOR_BODY, tampered, context)


def test_web3_notification_is_a_check_hint():
    body = signing.web3_event(CS_3, tx_hash="0x" + "AB" * 32)
    raw, headers = signing.signed("web3", body)
    event = web3.verify(raw, lower(headers), WEB3)
    assert (event.intent, event.session_id) == (Intent.CHECK, CS_3)
    assert event.reference == "0x" + "ab" * 32 and event.event_id == headers["webhook-id"]


@pytest.mark.parametrize("signature", ["", "v1,", "v1,not-base64!!", "v2,abc", "v1", "v1,,,",
                                       "v1,YWJj v1,ZGVm"])
def test_web3_rejects_malformed_signatures(signature):
    raw = signing.encode(signing.web3_event(CS_3))
    headers = lower(signing.web3_headers(raw))
    headers["webhook-signature"] = signature
    with pytest.raises(InvalidWebhook):
        web3.verify(raw, headers, WEB3)


def test_web3_accepts_one_good_signature_among_several():
    raw = signing.encode(signing.web3_event(CS_3))
    headers = lower(signing.web3_headers(raw))
    headers["webhook-signature"] = f"v1,{base64.b64encode(b'x' * 32).decode()} " + headers[
        "webhook-signature"]
    assert web3.verify(raw, headers, WEB3).session_id == CS_3


@pytest.mark.parametrize("tx", ["0x123", "0x" + "g" * 64, "ab" * 32, 5, None,
                                "0x" + "a" * 64 + "\n", " 0x" + "a" * 64])
def test_web3_rejects_malformed_transaction_hashes(tx):
    body = {**signing.web3_event(CS_3), "blockchain_tx_id": tx}
    raw, headers = signing.signed("web3", body)
    with pytest.raises(InvalidWebhook) as raised:
        web3.verify(raw, lower(headers), WEB3)
    assert raised.value.param == "blockchain_tx_id"


@pytest.mark.parametrize("offset", [-301, 301])
def test_web3_rejects_stale_and_future_timestamps(offset):
    raw = signing.encode(signing.web3_event(CS_3))
    headers = lower(signing.web3_headers(raw, timestamp=int(time.time()) + offset))
    with pytest.raises(InvalidWebhook, match="tolerance"):
        web3.verify(raw, headers, WEB3)


def test_web3_secret_rotation_and_a_malformed_configured_secret():
    raw = signing.encode(signing.web3_event(CS_3))
    headers = lower(signing.web3_headers(raw))
    context = VerifyContext(secrets=("whsec_!!!not-base64", signing.WEB3_SECRET), tolerance=300)
    assert web3.verify(raw, headers, context).session_id == CS_3
