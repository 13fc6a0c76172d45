"""A provider is one module plus one line in ``providers.REGISTRY``: a fourth provider, written
here and registered by that line alone, is verified by the webhook route, applied by the one
transaction, listed in ``/openapi.json`` and the admin filter, and signed by ``payhook trigger``.

The only other thing it needs is its ``PAYHOOK_ACME_WEBHOOK_SECRETS`` field in Settings (the
contract names each provider's variable), which the subclass below stands in for.
"""

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from payhook import config, providers, trigger
from payhook.cli import _parser
from payhook.config import SECRETS_FILE, CommaList, Settings
from payhook.domain.events import Intent, ProviderEvent
from payhook.providers import base
from payhook.providers.base import ProviderSpec, Session, VerifyContext
from tests import signing
from tests.conftest import ADMIN_TOKEN, SECRET_KEY

ACME_SECRET = "acme-test-secret"


# --- the provider module: what a new provider's file holds --------------------------------------

def acme_verify(raw: bytes, headers: Mapping[str, str], context: VerifyContext) -> ProviderEvent:
    stamp = base.check_timestamp(headers.get("x-acme-time"), context.tolerance)
    expected = [base.hmac_hex(secret.encode(), f"{stamp}.".encode() + raw)
                for secret in base.require_secrets(context)]
    if not base.any_signature_matches(expected, [headers.get("x-acme-signature", "")]):
        raise base.InvalidWebhook("no valid Acme signature")
    body = base.json_object(raw)
    session_id, _ = base.session_field(body, "session")
    return ProviderEvent(provider="acme", event_id=base.text_field(body, "id", required=True) or "",
                         type="paid", intent=Intent.PAY, session_id=session_id, raw=raw,
                         headers={}, amount=body.get("amount"), currency=body.get("currency"))


def acme_sign(raw: bytes, secret: str, timestamp: int) -> dict[str, str]:
    return {"X-Acme-Time": str(timestamp),
            "X-Acme-Signature": base.hmac_hex(secret.encode(), f"{timestamp}.".encode() + raw)}


def acme_sample(session: Session, _event_type: str, _stamp: int,
                _tx_hash: str | None) -> dict[str, Any]:
    return {"id": f"acme_{uuid.uuid4().hex}", "session": session.id, "amount": session.amount,
            "currency": session.currency}


ACME = ProviderSpec(name="acme", verify=acme_verify, secrets_setting="acme_webhook_secrets",
                    generate_secret=lambda: secrets.token_urlsafe(32), sign=acme_sign,
                    sample=acme_sample, default_event="paid")


class WithAcme(Settings):
    acme_webhook_secrets: CommaList = ()


# --- the one line ------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "REGISTRY", (*providers.REGISTRY, ACME))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return WithAcme(database_url=database_url, secret_key=SECRET_KEY, admin_token=ADMIN_TOKEN,
                    public_base_url="http://payhook.test", **signing.SECRETS,
                    acme_webhook_secrets=ACME_SECRET)


async def test_a_registered_provider_is_verified_applied_and_listed(client, app, merchant):
    created = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                                json={"amount": 1999, "currency": "usd"})
    session = Session(id=created.json()["id"], amount=1999, currency="usd", mode="test")

    forged = trigger.build("acme", session, "not-the-secret")
    refused = await client.post("/webhooks/acme", content=forged.raw, headers=forged.headers)
    assert refused.status_code == 400, refused.text

    signed = trigger.build("acme", session, ACME_SECRET)
    answer = await client.post("/webhooks/acme", content=signed.raw, headers=signed.headers)
    assert answer.json() == {"received": True, "outcome": "applied"}, answer.text
    paid = await client.get(f"/v1/checkout/sessions/{session.id}", headers=merchant.headers)
    assert (paid.json()["status"], paid.json()["payment_provider"]) == ("paid", "acme")

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    listed = await client.get("/admin/events?provider=acme", headers=admin)
    assert [event["session_id"] for event in listed.json()["data"]] == [session.id]

    document = (await client.get("/openapi.json")).json()
    assert document["components"]["schemas"]["Provider"] == {
        "enum": ["stripe", "onecom", "web3", "acme"]}
    webhook = document["paths"]["/webhooks/{provider}"]["post"]
    assert webhook["parameters"][0]["schema"] == {"$ref": "#/components/schemas/Provider"}


def test_payhook_trigger_offers_it_and_signs_it_as_its_module_says():
    args = _parser().parse_args(["trigger", "acme", "--session", "cs_any"])
    assert args.provider == "acme"
    session = Session(id="cs_any", amount=5, currency="eur", mode="test")
    signed = trigger.build("acme", session, ACME_SECRET, now=int(time.time()))
    assert json.loads(signed.raw)["session"] == "cs_any"
    event = acme_verify(signed.raw, {k.lower(): v for k, v in signed.headers.items()},
                        VerifyContext(secrets=(ACME_SECRET,), tolerance=300))
    assert (event.amount, event.currency) == (5, "eur")


def test_the_embedded_default_generates_its_secret_as_its_module_says(tmp_path):
    embedded = config._with_embedded_secrets(
        WithAcme(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db"))
    assert len(embedded.acme_webhook_secrets[0]) >= 32
    stored = json.loads((tmp_path / SECRETS_FILE).read_text())
    assert stored["acme_webhook_secrets"] == embedded.acme_webhook_secrets[0]
