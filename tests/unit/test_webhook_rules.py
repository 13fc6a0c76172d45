"""The endpoint filter and the failure limit, as pure rules; the request schema's event types
agree with the domain's."""

import typing
from datetime import UTC, datetime, timedelta

import pytest

from payhook.domain.webhooks import EVENT_TYPES, EVERY, accepts, failed_too_long
from payhook.schemas import EventType


def test_the_schema_accepts_exactly_the_domain_event_types_and_every():
    assert set(typing.get_args(EventType)) == {EVERY, *EVENT_TYPES}


def test_enabled_events_filter_by_type_or_let_everything_through():
    assert accepts(["*"], "checkout.session.failed")
    assert accepts(["checkout.session.paid"], "checkout.session.paid")
    assert not accepts(["checkout.session.paid"], "checkout.session.failed")


def test_only_a_spell_of_failure_as_long_as_the_limit_disables():
    now, limit = datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=120)
    assert not failed_too_long(None, now, limit)
    assert not failed_too_long(now - limit + timedelta(seconds=1), now, limit)
    assert failed_too_long(now - limit, now, limit)


def test_an_attempt_keeps_the_first_kib_of_the_answer_as_storable_text():
    from payhook.effects.deliveries import snippet

    assert snippet(b"ok\x00" + b"x" * 2000) == "ok\ufffd" + "x" * 1021
    assert snippet("é".encode() * 600) == "é" * 512  # 1024 bytes, cut between characters
    assert snippet(b"a" * 1023 + "é".encode()) == "a" * 1023 + "\ufffd"  # cut inside one


def test_two_secrets_sign_one_request_each_verifying_alone():
    import json

    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    from payhook.effects.deliveries import signed_headers
    from payhook.services.webhook_endpoints import generate_secret

    old, new, stranger = generate_secret(), generate_secret(), generate_secret()
    raw = json.dumps({"id": "evt_1"}).encode()
    headers = signed_headers([new, old], "evt_1", raw, datetime.now(UTC))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(raw, headers) == {"id": "evt_1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(raw, headers)
