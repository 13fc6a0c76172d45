"""Property: whatever events arrive, in whatever order, the stored session only ever makes
legal moves, never leaves a terminal state, and ends each event where the rules put it (a
valid payment of an open session pays it) — on both writers and both databases."""

import asyncio
import shutil
import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.tables import checkout_sessions, merchants
from payhook.domain.events import Intent, ProviderEvent
from payhook.domain.sessions import TERMINAL, Status, can_move
from payhook.ingest.portable import PortableWriter
from payhook.ingest.postgres import PostgresWriter
from tests.conftest import _admin, _with_database

EVENTS = st.lists(st.tuples(
    st.sampled_from([Intent.PAY, Intent.PEND, Intent.FAIL, Intent.RECORD, Intent.CHECK]),
    st.sampled_from([1999, 5]), st.sampled_from(["usd", "eth"]), st.sampled_from(["test", "live"]),
    st.integers(min_value=0, max_value=4),  # event ids repeat: duplicates are in the mix
), min_size=1, max_size=10)
CRYPTO = frozenset({"eth"})
AMOUNT = 1999


def expected(status: Status, intent: Intent, amount: int, currency: str, mode: str,
             session_currency: str) -> Status:
    """Where a new event puts an unexpired test-mode session of AMOUNT in session_currency."""
    if mode != "test":
        return status  # a mode mismatch changes nothing
    if intent is Intent.PAY and amount == AMOUNT and currency == session_currency:
        return Status.PAID if status in (Status.CREATED, Status.PENDING) else status
    if intent is Intent.PEND or (intent is Intent.CHECK and session_currency in CRYPTO):
        return Status.PENDING if status is Status.CREATED else status
    if intent is Intent.FAIL:
        return Status.FAILED if status in (Status.CREATED, Status.PENDING) else status
    return status


async def play(url: str, sequence, writer_kind: str) -> None:
    engine = create_engine(url)
    writer = (await PostgresWriter.connect(url, 10, CRYPTO) if writer_kind == "pg"
              else PortableWriter(engine, 10, CRYPTO))
    try:
        now = clock.now()
        session_id, merchant_id = f"cs_{uuid.uuid4().hex}", f"mer_{uuid.uuid4().hex}"
        async with engine.begin() as conn:
            await conn.execute(merchants.insert().values(id=merchant_id, name="m",
                                                         created_at=now))
            await conn.execute(checkout_sessions.insert().values(
                id=session_id, merchant_id=merchant_id, mode="test", status="created",
                amount=AMOUNT, currency=sequence[0][2], metadata={}, created_at=now,
                updated_at=now, expires_at=now + timedelta(hours=1)))
        status, seen = Status.CREATED, set()
        for intent, amount, currency, mode, number in sequence:
            event = ProviderEvent(
                provider="stripe", event_id=f"{session_id}-{number}", type=intent.value,
                intent=intent, session_id=session_id, raw=b"{}", headers={}, amount=amount,
                currency=currency, mode=mode, reference="0x" + "a" * 64)
            await writer.record(event)
            async with engine.connect() as conn:
                now_status = Status(await conn.scalar(select(checkout_sessions.c.status).where(
                    checkout_sessions.c.id == session_id)))
            if now_status != status:
                assert status not in TERMINAL and can_move(status, now_status)
            must = status if number in seen else expected(status, intent, amount, currency,
                                                          mode, sequence[0][2])
            assert now_status == must, (intent, amount, currency, mode, number in seen)
            status = now_status
            seen.add(number)
    finally:
        if isinstance(writer, PostgresWriter):
            await writer.close()
        await engine.dispose()


RUN = settings(max_examples=30, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_postgresql_writer(pg_admin_url, pg_template):
    name = f"payhook_prop_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_admin_url, f"CREATE DATABASE {name} TEMPLATE {pg_template}"))
    url = _with_database(pg_admin_url, name)
    try:
        @RUN
        @given(EVENTS)
        def check(sequence):
            asyncio.run(play(url, sequence, "pg"))

        check()
    finally:
        asyncio.run(_admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def test_portable_writer_on_sqlite(sqlite_template, tmp_path):
    path = tmp_path / "prop.db"
    shutil.copyfile(sqlite_template, path)

    @RUN
    @given(EVENTS)
    def check(sequence):
        asyncio.run(play(f"sqlite+aiosqlite:///{path}", sequence, "portable"))

    check()
