"""Differential property: the portable writer and PostgreSQL's one-statement writer, given the
same events, answer the same outcomes and store the same session, outbox kinds and anomalies.

One database and one event loop for every example (a database each would take minutes): each
example plays its events against two fresh sessions alike in all but id, one per writer.
"""

import asyncio
import uuid
from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.tables import anomalies, checkout_sessions, merchants, outbox_entries
from payhook.domain.events import UNSTATED, Intent, ProviderEvent
from payhook.ingest.portable import PortableWriter
from payhook.ingest.postgres import PostgresWriter
from tests.conftest import _admin, _with_database

CRYPTO = frozenset({"eth"})
AMOUNT = 1999
EVENT = st.fixed_dictionaries({
    "intent": st.sampled_from(list(Intent)),
    "amount": st.sampled_from([AMOUNT, 5, None]),
    "currency": st.sampled_from(["usd", "eth", "eur"]),
    "mode": st.sampled_from(["test", "live", None, UNSTATED]),
    "reference": st.sampled_from(["pi_a", "pi_b", None]),
    "number": st.integers(min_value=0, max_value=4),  # event ids repeat: duplicates
    "target": st.sampled_from(["session", "session", "session", "unknown", None]),
})
CASE = st.fixed_dictionaries({
    "currency": st.sampled_from(["usd", "eth"]),
    "expired": st.booleans(),  # a session past its expiry: payments are late
    "status": st.sampled_from(["created", "pending", "paid", "failed"]),
    "events": st.lists(EVENT, min_size=1, max_size=8),
})



def pay(number, **changes):
    return {"intent": Intent.PAY, "amount": AMOUNT, "currency": "usd", "mode": "test",
            "reference": "pi_a", "number": number, "target": "session", **changes}


# Every outcome and anomaly at least once, whatever hypothesis draws.
EVERY_OUTCOME = {"currency": "usd", "expired": False, "status": "created", "events": [
    pay(0, amount=5), pay(1, currency="eur"), pay(2, mode="live"), pay(3, intent=Intent.IGNORE),
    pay(4, target="unknown"), pay(5), pay(6, reference="pi_b"), pay(5)]}
LATE = {"currency": "usd", "expired": True, "status": "pending", "events": [pay(0)]}


async def play(engine, writer, case) -> dict:
    """The case's events through ``writer`` on a fresh session; what it answered and stored."""
    now = clock.now()
    session_id, unknown_id = f"cs_{uuid.uuid4().hex}", f"cs_{uuid.uuid4().hex}"
    async with engine.begin() as conn:
        await conn.execute(checkout_sessions.insert().values(
            id=session_id, merchant_id="mer_diff", mode="test", status=case["status"],
            amount=AMOUNT, currency=case["currency"], metadata={}, created_at=now,
            updated_at=now, paid_at=now if case["status"] == "paid" else None,
            provider_reference="pi_first" if case["status"] == "paid" else None,
            expires_at=now + (timedelta(minutes=-1) if case["expired"] else timedelta(hours=1))))
    targets = {"session": session_id, "unknown": unknown_id, None: None}
    outcomes = []
    for spec in case["events"]:
        outcomes.append(await writer.record(ProviderEvent(
            provider="stripe", event_id=f"evt_{session_id}_{spec['number']}",
            type=spec["intent"].value, intent=spec["intent"],
            session_id=targets[spec["target"]], raw=b"{}", headers={},
            amount=spec["amount"], currency=spec["currency"], mode=spec["mode"],
            reference=spec["reference"])))
    async with engine.connect() as conn:
        row = (await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id == session_id))).one()
        queued = (await conn.execute(select(outbox_entries.c.kind).where(
            outbox_entries.c.payload["session_id"].as_string().in_((session_id, unknown_id)))
        )).scalars().all()
        noted = (await conn.execute(select(anomalies.c.kind).where(
            anomalies.c.session_id.in_((session_id, unknown_id))))).scalars().all()
    return {"outcomes": outcomes,
            "session": (row.status, row.failure_reason, row.paid_at is not None,
                        row.provider_reference, row.payment_provider),
            "outbox": sorted(queued), "anomalies": sorted(noted)}


async def open_writers(url):
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(merchants.insert().values(id="mer_diff", name="m",
                                                     created_at=clock.now()))
    return engine, PortableWriter(engine, 10, CRYPTO), await PostgresWriter.connect(url, 10,
                                                                                   CRYPTO)


def test_both_writers_store_the_same(pg_admin_url, pg_template):
    name = f"payhook_diff_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_admin_url, f"CREATE DATABASE {name} TEMPLATE {pg_template}"))
    loop = asyncio.new_event_loop()
    engine, portable, postgres = loop.run_until_complete(
        open_writers(_with_database(pg_admin_url, name)))
    played = []
    try:
        @settings(max_examples=200, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(CASE)
        @example(EVERY_OUTCOME)
        @example(LATE)
        def check(case):
            seen = {label: loop.run_until_complete(play(engine, writer, case))
                    for label, writer in (("portable", portable), ("postgres", postgres))}
            assert seen["portable"] == seen["postgres"]
            played.append(seen["portable"])

        check()
    finally:
        loop.run_until_complete(postgres.close())
        loop.run_until_complete(engine.dispose())
        loop.close()
        asyncio.run(_admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    # The examples reached what the comparison is for: moves, queued work and anomalies.
    assert len(played) >= 200
    assert {"applied", "recorded", "duplicate", "unmatched", "ignored"} <= {
        outcome for result in played for outcome in result["outcomes"]}
    assert any(result["outbox"] for result in played)
    assert {"late_payment", "duplicate_payment", "amount_mismatch", "currency_mismatch",
            "mode_mismatch"} <= {kind for result in played for kind in result["anomalies"]}


async def test_concurrent_webhooks_read_their_sessions_together(pg_url):
    """Forty webhooks at once, each paying its own session, and two late copies of each of
    five: every session is paid once, and their reads took fewer statements than webhooks."""
    engine, _portable, postgres = await open_writers(pg_url)
    try:
        now = clock.now()
        ids = [f"cs_{uuid.uuid4().hex}" for _ in range(40)]
        async with engine.begin() as conn:
            await conn.execute(checkout_sessions.insert(), [dict(
                id=session_id, merchant_id="mer_diff", mode="test", status="created",
                amount=AMOUNT, currency="usd", metadata={}, created_at=now, updated_at=now,
                expires_at=now + timedelta(hours=1)) for session_id in ids])

        def paying(session_id: str) -> ProviderEvent:
            return ProviderEvent(
                provider="stripe", event_id=f"evt_{session_id}", type="payment_intent.succeeded",
                intent=Intent.PAY, session_id=session_id, raw=b"{}", headers={}, amount=AMOUNT,
                currency="usd", mode="test", reference=f"pi_{session_id}")

        events = [paying(session_id) for session_id in ids] + [
            paying(session_id) for session_id in ids[:5] for _ in range(2)]
        outcomes = await asyncio.gather(*(postgres.record(event) for event in events))
        assert sorted(outcomes) == ["applied"] * 40 + ["duplicate"] * 10
        assert postgres.reads.statements < len(events)
        async with engine.connect() as conn:
            paid = (await conn.execute(select(checkout_sessions.c.id).where(
                checkout_sessions.c.status == "paid"))).scalars().all()
            queued = (await conn.execute(select(outbox_entries.c.kind))).scalars().all()
        assert sorted(paid) == sorted(ids)
        assert len(queued) == 4 * 40  # invoice, key, link and notification, once a session
    finally:
        await postgres.close()
        await engine.dispose()
