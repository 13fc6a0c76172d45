"""Which deliveries are tried and what each try writes, decided without a database or a network."""

from datetime import UTC, datetime

from payhook.effects.delivery_plan import (
    Attempt,
    DeliveryFailed,
    Record,
    Target,
    plan,
    settle,
)
from payhook.outbox.store import Entry


def row(n: int, attempts: int = 1, max_attempts: int = 3) -> Entry:
    return Entry(id=f"ob_{n}", kind="delivery.send", payload={"delivery_id": f"dl_{n}"},
                 attempts=attempts, max_attempts=max_attempts, errors=[], locked_by="w",
                 created_at=datetime(2026, 1, 1, tzinfo=UTC))


def target(n: int, status: str = "pending", endpoint_status: str = "enabled") -> Target:
    return Target(id=f"dl_{n}", endpoint_id=f"we_{n}", event_id="evt_1", body={},
                  status=status, url="https://shop.example/hook", sealed_secret=b"",
                  endpoint_status=endpoint_status)


def test_plan_tries_enabled_endpoints_and_ends_the_others_untried():
    targets = {t.id: t for t in (target(1), target(2, endpoint_status="disabled"),
                                 target(3, endpoint_status="deleted"),
                                 target(4, status="delivered"))}
    planned = plan([row(n) for n in range(1, 6)], targets)
    assert [(entry.id, t.id) for entry, t in planned.tries] == [("ob_1", "dl_1")]
    assert planned.ended == {"ob_2": Record("dl_2", None, "failed"),
                             "ob_3": Record("dl_3", None, "failed")}
    # Already delivered (the row ran before): nothing to try, nothing to write.
    assert "ob_4" not in planned.ended and "ob_4" not in planned.missing
    [missing] = planned.missing.items()
    assert missing[0] == "ob_5" and isinstance(missing[1], LookupError)
    assert "dl_5" in str(missing[1])


def test_settle_delivers_2xx_and_ends_a_410_disabling_its_endpoint():
    planned = plan([row(1), row(2)], {"dl_1": target(1), "dl_2": target(2)})
    ok, gone = Attempt(204, 12), Attempt(410, 5, error="endpoint answered 410 Gone")
    settled = settle(planned, [ok, gone])
    assert settled.records == {"ob_1": Record("dl_1", ok, "delivered"),
                               "ob_2": Record("dl_2", gone, "failed", gone="we_2")}
    assert settled.failed == {}


def test_settle_fails_other_answers_keeping_the_try_and_gives_up_on_the_last_attempt():
    rows = [row(1, attempts=1), row(2, attempts=3), row(3)]
    planned = plan(rows, {"dl_1": target(1), "dl_2": target(2),
                          "dl_3": target(3, endpoint_status="disabled")})
    busy = Attempt(503, 8, error="endpoint answered 503", retry_after=30.0)
    down = Attempt(None, 9, error="timed out (ConnectTimeout)")
    settled = settle(planned, [busy, down])
    assert settled.records == {"ob_1": Record("dl_1", busy, None),  # still pending: retried
                               "ob_2": Record("dl_2", down, "failed"),  # its last attempt
                               "ob_3": Record("dl_3", None, "failed")}  # ended untried
    assert set(settled.failed) == {"ob_1", "ob_2"}
    retried, given_up = settled.failed["ob_1"], settled.failed["ob_2"]
    assert isinstance(retried, DeliveryFailed) and retried.retry_in == 30.0
    assert str(retried) == "endpoint answered 503"
    assert isinstance(given_up, DeliveryFailed) and str(given_up) == down.error


def test_settle_names_the_status_when_a_failed_try_has_no_error_text():
    planned = plan([row(1)], {"dl_1": target(1)})
    settled = settle(planned, [Attempt(500, 3)])
    assert str(settled.failed["ob_1"]) == "endpoint answered 500"
