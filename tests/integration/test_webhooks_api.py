"""POST /webhooks/{provider} on PostgreSQL and SQLite: every outcome and anomaly, nothing written
for a bad request, one transaction, and concurrent duplicates ending like serial ones."""

import asyncio

import pytest
from sqlalchemy import func, select

from payhook.db.tables import anomalies, checkout_sessions, outbox_entries, webhook_events
from tests import paying, signing
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def new_session(client, merchant, **body) -> str:
    answer = await client.post("/v1/checkout/sessions", headers=merchant.headers,
                               json={"amount": 1999, "currency": "usd", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


async def send(client, provider: str, body: dict, **options) -> dict:
    raw, headers = signing.signed(provider, body, **options)
    answer = await client.post(f"/webhooks/{provider}", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] is True
    return answer.json()


async def counts(app) -> dict[str, int]:
    async with app.state.payhook.engine.connect() as conn:
        return {table.name: int(await conn.scalar(select(func.count()).select_from(table)))
                for table in (webhook_events, outbox_entries, anomalies)}


async def session_row(app, session_id):
    async with app.state.payhook.engine.connect() as conn:
        return (await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id == session_id))).one()


async def outbox_kinds(app) -> list[str]:
    async with app.state.payhook.engine.connect() as conn:
        return sorted((await conn.execute(select(outbox_entries.c.kind))).scalars())


async def anomaly_kinds(app) -> list[str]:
    async with app.state.payhook.engine.connect() as conn:
        return sorted((await conn.execute(select(anomalies.c.kind))).scalars())


@pytest.mark.parametrize("provider", ["stripe", "onecom"])
async def test_a_payment_is_applied_with_its_outbox_rows(client, app, merchant, provider):
    session_id = await new_session(client, merchant)
    body = (signing.stripe_event(session_id) if provider == "stripe"
            else signing.onecom_event(session_id))
    assert (await send(client, provider, body))["outcome"] == "applied"
    row = await session_row(app, session_id)
    assert (row.status, row.payment_provider) == ("paid", provider)
    assert row.paid_at is not None and row.provider_reference
    assert await outbox_kinds(app) == ["access_link.issue", "api_key.provision",
                                       "invoice.create", "merchant.notify"]
    seen = (await client.get(f"/v1/checkout/sessions/{session_id}",
                             headers=merchant.headers)).json()
    assert (seen["status"], seen["payment_status"]) == ("paid", "completed")
    async with app.state.payhook.engine.connect() as conn:
        stored = (await conn.execute(select(webhook_events))).one()
        outbox = (await conn.execute(select(outbox_entries))).all()
    assert stored.raw_body == signing.encode(body) and stored.outcome == "applied"
    assert {entry.payload["session_id"] for entry in outbox} == {session_id}
    assert all(entry.status == "pending" and entry.attempts == 0 for entry in outbox)


async def test_the_same_event_twice_is_a_duplicate(client, app, merchant):
    session_id = await new_session(client, merchant)
    body = signing.stripe_event(session_id)
    assert (await send(client, "stripe", body))["outcome"] == "applied"
    assert (await send(client, "stripe", body))["outcome"] == "duplicate"
    assert await counts(app) == {"webhook_events": 1, "outbox_entries": 4, "anomalies": 0}


async def test_processing_then_canceled(client, app, merchant):
    session_id = await new_session(client, merchant)
    processing = signing.stripe_event(session_id, kind="payment_intent.processing")
    assert (await send(client, "stripe", processing))["outcome"] == "applied"
    assert (await session_row(app, session_id)).status == "pending"
    canceled = signing.stripe_event(session_id, kind="payment_intent.canceled")
    assert (await send(client, "stripe", canceled))["outcome"] == "applied"
    row = await session_row(app, session_id)
    assert (row.status, row.failure_reason) == ("failed", "provider_failed")
    assert await outbox_kinds(app) == ["merchant.notify"]


async def test_a_declined_card_is_recorded_and_the_customer_may_retry(client, app, merchant):
    session_id = await new_session(client, merchant)
    declined = signing.stripe_event(session_id, kind="payment_intent.payment_failed")
    assert (await send(client, "stripe", declined))["outcome"] == "recorded"
    assert (await session_row(app, session_id)).status == "created"
    assert (await send(client, "stripe", signing.stripe_event(session_id)))["outcome"] == \
        "applied"


async def test_terminal_states_are_final(client, app, merchant):
    session_id = await new_session(client, merchant)
    await send(client, "onecom", signing.onecom_event(session_id))
    for body in (signing.onecom_event(session_id, kind="payment.failed"),
                 signing.onecom_event(session_id, kind="payment.pending")):
        assert (await send(client, "onecom", body))["outcome"] == "recorded"
    assert (await session_row(app, session_id)).status == "paid"


async def test_ignored_and_unmatched_events_are_stored(client, app, merchant):
    assert (await send(client, "stripe", signing.stripe_event(None)))["outcome"] == "ignored"
    other = signing.stripe_event("cs_x", kind="customer.created")
    assert (await send(client, "stripe", other))["outcome"] == "ignored"
    unknown = signing.stripe_event("cs_doesnotexist")
    assert (await send(client, "stripe", unknown))["outcome"] == "unmatched"
    async with app.state.payhook.engine.connect() as conn:
        outcomes = sorted((await conn.execute(select(webhook_events.c.outcome))).scalars())
    assert outcomes == ["ignored", "ignored", "unmatched"]
    assert (await counts(app))["outbox_entries"] == 0


@pytest.mark.parametrize(("changes", "kind"), [
    ({"amount": 1}, "amount_mismatch"), ({"currency": "eur"}, "currency_mismatch"),
    ({"livemode": True}, "mode_mismatch")])
async def test_mismatches_are_recorded_as_anomalies(client, app, merchant, changes, kind):
    session_id = await new_session(client, merchant)
    body = signing.stripe_event(session_id, **changes)
    assert (await send(client, "stripe", body))["outcome"] == "recorded"
    assert (await session_row(app, session_id)).status == "created"
    assert await anomaly_kinds(app) == [kind]
    async with app.state.payhook.engine.connect() as conn:
        note = (await conn.execute(select(anomalies))).one()
        event_row = (await conn.execute(select(webhook_events))).one()
    assert note.session_id == session_id and note.event_id == event_row.id
    assert note.details["provider_event_id"] == body["id"]


@pytest.mark.parametrize("kind", ["payment_intent.succeeded", "charge.succeeded"])
@pytest.mark.parametrize("livemode", ["missing", None, "true", 1])
async def test_a_stripe_payment_without_a_boolean_livemode_is_a_mode_mismatch(
        client, app, merchant, kind, livemode):
    """Stripe states every event's mode: one that does not is never applied to a session,
    a live one included."""
    session_id = await paying.new_session(client, merchant.id, "live")
    body = signing.stripe_event(session_id, kind=kind, livemode=True)
    if livemode == "missing":
        del body["livemode"]
    else:
        body["livemode"] = livemode
    assert (await send(client, "stripe", body))["outcome"] == "recorded"
    row = await session_row(app, session_id)
    assert (row.status, row.paid_at, row.provider_reference) == ("created", None, None)
    assert await anomaly_kinds(app) == ["mode_mismatch"]
    assert await outbox_kinds(app) == []
    async with app.state.payhook.engine.connect() as conn:
        note = (await conn.execute(select(anomalies))).one()
    assert (note.session_id, note.details["expected"]) == (session_id, "live")


async def test_a_payment_after_cancel_is_a_late_payment(client, app, merchant):
    session_id = await new_session(client, merchant)
    await client.post(f"/v1/checkout/sessions/{session_id}/cancel", headers=merchant.headers)
    assert (await send(client, "onecom", signing.onecom_event(session_id)))["outcome"] == \
        "recorded"
    assert await anomaly_kinds(app) == ["late_payment"]
    assert (await session_row(app, session_id)).status == "failed"


async def test_a_payment_after_expiry_is_a_late_payment(client, app, merchant):
    from datetime import UTC, datetime, timedelta

    session_id = await new_session(client, merchant)
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(checkout_sessions.update().values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert (await send(client, "stripe", signing.stripe_event(session_id)))["outcome"] == \
        "recorded"
    assert await anomaly_kinds(app) == ["late_payment"]


async def test_a_second_payment_by_another_reference_is_flagged(client, app, merchant):
    session_id = await new_session(client, merchant)
    await send(client, "stripe", signing.stripe_event(session_id))
    assert (await send(client, "stripe", signing.stripe_event(session_id)))["outcome"] == \
        "recorded"
    assert await anomaly_kinds(app) == ["duplicate_payment"]


async def test_a_web3_hint_moves_to_pending_and_queues_a_check(client, app, merchant):
    session_id = await new_session(client, merchant, amount=10**18, currency="eth")
    first = signing.web3_event(session_id, tx_hash="0x" + "1" * 64)
    assert (await send(client, "web3", first))["outcome"] == "applied"
    assert (await session_row(app, session_id)).status == "pending"
    again = signing.web3_event(session_id, kind="payment.confirmed", tx_hash="0x" + "1" * 64)
    assert (await send(client, "web3", again))["outcome"] == "recorded"
    assert await outbox_kinds(app) == ["onchain.check"]  # one check of the transaction at a time
    other = signing.web3_event(session_id, tx_hash="0x" + "2" * 64)
    assert (await send(client, "web3", other))["outcome"] == "recorded"
    assert await outbox_kinds(app) == ["onchain.check", "onchain.check"]
    fiat = await new_session(client, merchant)
    assert (await send(client, "web3", signing.web3_event(fiat)))["outcome"] == "recorded"
    assert await anomaly_kinds(app) == ["currency_mismatch"]


BAD_REQUESTS = {
    "no signature": lambda raw, h: {"Content-Type": "application/json"},
    "wrong secret": lambda raw, h: signing.stripe_headers(raw, "whsec_wrong"),
    "stale": lambda raw, h: signing.stripe_headers(raw, timestamp=1_600_000_000),
    "future": lambda raw, h: signing.stripe_headers(raw, timestamp=4_000_000_000),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_signatures_are_400_and_write_nothing(client, app, merchant, case):
    session_id = await new_session(client, merchant)
    raw, headers = signing.signed("stripe", signing.stripe_event(session_id))
    answer = await client.post("/webhooks/stripe", content=raw,
                               headers=BAD_REQUESTS[case](raw, headers))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_webhook"
    assert await counts(app) == {"webhook_events": 0, "outbox_entries": 0, "anomalies": 0}
    assert (await session_row(app, session_id)).status == "created"


async def test_tampered_and_non_json_bodies_are_400(client, app, merchant):
    session_id = await new_session(client, merchant)
    raw, headers = signing.signed("onecom", signing.onecom_event(session_id))
    tampered = await client.post("/webhooks/onecom", content=raw.replace(b"1999", b"1000"),
                                 headers=headers)
    assert tampered.status_code == 400
    not_json = b"amount=1999"
    answer = await client.post("/webhooks/onecom", content=not_json,
                               headers=signing.onecom_headers(not_json))
    assert answer.status_code == 400
    no_id = signing.encode({"event": "payment.completed", "reference": session_id})
    answer = await client.post("/webhooks/onecom", content=no_id,
                               headers=signing.onecom_headers(no_id))
    assert answer.status_code == 400
    assert await counts(app) == {"webhook_events": 0, "outbox_entries": 0, "anomalies": 0}


async def test_unknown_provider_is_404(client):
    answer = await client.post("/webhooks/paypal", content=b"{}",
                               headers={"Content-Type": "application/json"})
    assert answer.status_code == 404


async def test_a_provider_without_secret_refuses_everything(app, client, merchant, settings):
    from payhook import providers

    app.state.payhook.providers = providers.configured(
        settings.model_copy(update={"stripe_webhook_secrets": ()}))
    session_id = await new_session(client, merchant)
    raw, headers = signing.signed("stripe", signing.stripe_event(session_id))
    answer = await client.post("/webhooks/stripe", content=raw, headers=headers)
    assert answer.status_code == 400
    assert (await counts(app))["webhook_events"] == 0


async def test_a_failing_transaction_leaves_no_event_row(client, app, merchant, monkeypatch,
                                                         caplog):
    """The database refuses the last write (an outcome its CHECK constraint forbids): the event
    row, the transition and the outbox rows all roll back with it, and the bug is a 500."""
    import dataclasses

    from payhook.ingest import portable, postgres

    session_id = await new_session(client, merchant)
    real = portable.decide

    def refused(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), outcome="bogus")

    monkeypatch.setattr(portable, "decide", refused)
    monkeypatch.setattr(postgres, "decide", refused)
    raw, headers = signing.signed("stripe", signing.stripe_event(session_id))
    refusal = await client.post("/webhooks/stripe", content=raw, headers=headers)
    assert refusal.status_code == 500 and refusal.json()["error"]["message"] == "internal error"
    assert any("check" in str(record.exc_info[1]).lower()
               for record in caplog.records if record.exc_info)
    assert await counts(app) == {"webhook_events": 0, "outbox_entries": 0, "anomalies": 0}
    assert (await session_row(app, session_id)).status == "created"
    monkeypatch.undo()
    answer = await client.post("/webhooks/stripe", content=raw, headers=headers)
    assert answer.json()["outcome"] == "applied"


async def test_concurrent_copies_end_like_serial_ones(client, app, merchant):
    await concurrent_copies_end_like_serial_ones(client, app, merchant)


async def test_the_portable_writer_on_every_backend(client, app, merchant):
    """SQLite always runs the portable writer; here PostgreSQL runs it as well."""
    from payhook.ingest.portable import PortableWriter

    state = app.state.payhook
    state.ingest = PortableWriter(state.engine, 10, state.settings.fiat_and_crypto_symbols)
    await concurrent_copies_end_like_serial_ones(client, app, merchant)
    session_id = await new_session(client, merchant)
    body = signing.stripe_event(session_id, amount=5)
    assert (await send(client, "stripe", body))["outcome"] == "recorded"
    assert "amount_mismatch" in await anomaly_kinds(app)


async def concurrent_copies_end_like_serial_ones(client, app, merchant):
    """20 copies of a paid event and 5 of a failed event for one session, all at once."""
    session_id = await new_session(client, merchant)
    paid = signing.encode(signing.stripe_event(session_id, event_id="evt_paid"))
    failed = signing.encode(signing.stripe_event(session_id, kind="payment_intent.canceled",
                                                 event_id="evt_failed"))
    requests = [(paid, signing.stripe_headers(paid)) for _ in range(20)] + [
        (failed, signing.stripe_headers(failed)) for _ in range(5)]
    answers = await asyncio.gather(*[
        client.post("/webhooks/stripe", content=raw, headers=headers)
        for raw, headers in requests])
    assert {answer.status_code for answer in answers} == {200}
    outcomes = [answer.json()["outcome"] for answer in answers]
    assert outcomes.count("duplicate") == 23
    async with app.state.payhook.engine.connect() as conn:
        events = (await conn.execute(select(webhook_events.c.event_id).where(
            webhook_events.c.session_id == session_id))).scalars().all()
        kinds = sorted((await conn.execute(select(outbox_entries.c.kind).where(
            outbox_entries.c.payload["session_id"].as_string() == session_id))).scalars())
    assert sorted(events) == ["evt_failed", "evt_paid"]
    row = await session_row(app, session_id)
    # Both orders are legal; each must end as if the events had arrived one after the other.
    if row.status == "paid":  # the payment won; the cancel came too late to matter
        assert outcomes[:20].count("applied") == 1 and outcomes[20:].count("recorded") == 1
        assert kinds == ["access_link.issue", "api_key.provision", "invoice.create",
                         "merchant.notify"]
    else:  # the cancel won; the payment then arrived late
        assert row.status == "failed" and outcomes[20:].count("applied") == 1
        assert kinds == ["merchant.notify"]
        assert "late_payment" in await anomaly_kinds(app)


async def test_a_reused_event_id_with_other_content_is_a_duplicate(client, app, merchant):
    """Found by the property test: the id, not the content, identifies an event."""
    session_id = await new_session(client, merchant)
    mismatched = signing.stripe_event(session_id, livemode=True, event_id="evt_same")
    assert (await send(client, "stripe", mismatched))["outcome"] == "recorded"
    honest = signing.stripe_event(session_id, event_id="evt_same")
    assert (await send(client, "stripe", honest))["outcome"] == "duplicate"
    assert (await session_row(app, session_id)).status == "created"
