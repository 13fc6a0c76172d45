"""Which deliveries are tried and what each try writes, decided without a database or a network."""

from datetime import UTC, datetime, timedelta

from payhook.effects.delivery_plan import (
    HELD_SECONDS,
    Attempt,
    DeliveryFailed,
    Record,
    Target,
    plan,
    settle,
)
from payhook.outbox.drain import NotReady
from payhook.outbox.store import Entry

NOW = datetime(2026, 1, 2, tzinfo=UTC)
LIMIT = timedelta(hours=5)


def row(n: int, attempts: int = 1, max_attempts: int = 3) -> Entry:
    return Entry(id=f"ob_{n}", kind="delivery.send", payload={"delivery_id": f"dl_{n}"},
                 attempts=attempts, max_attempts=max_attempts, locked_by="w",
                 created_at=datetime(2026, 1, 1, tzinfo=UTC))


def target(n: int, status: str = "pending", endpoint_status: str = "enabled",
           failing_since: datetime | None = None) -> Target:
    return Target(id=f"dl_{n}", endpoint_id=f"we_{n}", event_id="evt_1", body={},
                  status=status, url="https://shop.example/hook", sealed_secret=b"",
                  endpoint_status=endpoint_status, failing_since=failing_since)


def test_plan_tries_enabled_endpoints_holds_disabled_ones_and_ends_deleted_ones():
    targets = {t.id: t for t in (target(1), target(2, endpoint_status="disabled"),
                                 target(3, endpoint_status="deleted"),
                                 target(4, status="delivered"))}
    planned = plan([row(n) for n in range(1, 6)], targets)
    assert [(entry.id, t.id) for entry, t in planned.tries] == [("ob_1", "dl_1")]
    # Deleted: nothing will ever be sent.
    assert planned.ended == {"ob_3": Record("dl_3", None, "dead")}
    # Already delivered (the row ran before): nothing to try, nothing to write.
    assert "ob_4" not in set(planned.ended) | set(planned.unsent)
    # Disabled: the row waits (its attempt not counted) and the delivery stays as it is.
    held, missing = planned.unsent["ob_2"], planned.unsent["ob_5"]
    assert isinstance(held, NotReady) and held.shown and held.retry_in == HELD_SECONDS
    assert isinstance(missing, LookupError) and "dl_5" in str(missing)


def test_settle_delivers_2xx_and_holds_a_410_disabling_its_endpoint():
    planned = plan([row(1), row(2)], {"dl_1": target(1), "dl_2": target(2)})
    ok, gone = Attempt(204, 12), Attempt(410, 5, error="endpoint answered 410 Gone")
    settled = settle(planned, [ok, gone], NOW, LIMIT)
    assert settled.records == {
        "ob_1": Record("dl_1", ok, "delivered", "we_1", healthy=True),
        "ob_2": Record("dl_2", gone, "failed", "we_2", healthy=False, disable="gone")}
    assert settled.failed == {}


def test_settle_fails_other_answers_keeping_the_try_and_gives_up_on_the_last_attempt():
    rows = [row(1, attempts=1), row(2, attempts=3), row(3)]
    planned = plan(rows, {"dl_1": target(1), "dl_2": target(2),
                          "dl_3": target(3, endpoint_status="deleted")})
    busy = Attempt(503, 8, error="endpoint answered 503", retry_after=30.0)
    down = Attempt(None, 9, error="timed out (ConnectTimeout)")
    settled = settle(planned, [busy, down], NOW, LIMIT)
    assert settled.records == {
        "ob_1": Record("dl_1", busy, "failed", "we_1", healthy=False),  # retried
        "ob_2": Record("dl_2", down, "dead", "we_2", healthy=False),  # its last attempt
        "ob_3": Record("dl_3", None, "dead")}  # ended untried
    assert set(settled.failed) == {"ob_1", "ob_2"}
    retried, given_up = settled.failed["ob_1"], settled.failed["ob_2"]
    assert isinstance(retried, DeliveryFailed) and retried.retry_in == 30.0
    assert str(retried) == "endpoint answered 503"
    assert isinstance(given_up, DeliveryFailed) and str(given_up) == down.error


def test_an_endpoint_failing_past_the_limit_is_disabled_and_a_delivery_ends_the_spell():
    long_ago, lately = NOW - LIMIT, NOW - LIMIT + timedelta(seconds=1)
    planned = plan([row(1), row(2), row(3)], {
        "dl_1": target(1, failing_since=long_ago), "dl_2": target(2, failing_since=lately),
        "dl_3": target(3, failing_since=long_ago)})
    failed, ok = Attempt(500, 3), Attempt(200, 3)
    records = settle(planned, [failed, failed, ok], NOW, LIMIT).records
    assert (records["ob_1"].disable, records["ob_1"].was_failing) == ("failing", True)
    assert records["ob_2"].disable is None and records["ob_2"].healthy is False
    assert (records["ob_3"].healthy, records["ob_3"].was_failing) == (True, True)


def test_both_secrets_sign_until_the_old_one_expires():
    rotated = Target(id="dl_1", endpoint_id="we_1", event_id="evt_1", body={},
                     status="pending", url="https://shop.example/hook", sealed_secret=b"new",
                     endpoint_status="enabled", previous_secret=b"old",
                     previous_secret_expires_at=NOW + timedelta(seconds=1))
    assert rotated.secrets(NOW) == [b"new", b"old"]
    assert rotated.secrets(NOW + timedelta(seconds=1)) == [b"new"]


def test_settle_names_the_status_when_a_failed_try_has_no_error_text():
    planned = plan([row(1)], {"dl_1": target(1)})
    settled = settle(planned, [Attempt(500, 3)], NOW, LIMIT)
    assert str(settled.failed["ob_1"]) == "endpoint answered 500"
