"""The endpoint filter and the failure limit, as pure rules; the request schema's event types
agree with the domain's."""

import typing
from datetime import UTC, datetime, timedelta

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
