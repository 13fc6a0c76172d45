"""The console's lookups by a session's id and by a customer's e-mail go through indexes, on
both databases: the plans of the very statements the story and the search run are read with
EXPLAIN (PostgreSQL with sequential scans priced out — on a near-empty table it would rightly
prefer one — and SQLite's EXPLAIN QUERY PLAN). A JSON key or a partial index's predicate sent
as a parameter would fail here: neither database matches an index to it."""

import pytest
from sqlalchemy import text

from payhook.db.engine import create_engine
from payhook.services import story

SESSION = "cs_0123456789abcdefghijklmn"
STORY_INDEXES = {
    "event": "ix_webhook_events_session_id",
    "anomaly": "ix_anomalies_session_id",
    "outbox": "ix_outbox_entries_payload_session_id",
    "onchain": "ix_onchain_payments_session_id",
    "merchant_event": "ix_merchant_events_session_id",
    "delivery": "ix_deliveries_session_id",
}


@pytest.fixture
async def plan(database_url):
    """The plan of a statement as the application runs it, its values bound as parameters:
    on PostgreSQL a generic plan of the prepared statement (the one a plan cache may settle
    on, which sees no values), on SQLite the plan of the statement as prepared."""
    engine = create_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"

    async def explain(statement) -> str:
        compiled = statement.compile(dialect=engine.dialect,
                                     compile_kwargs={"render_postcompile": True})
        values = [compiled.params[name] for name in compiled.positiontup]
        async with engine.connect() as conn:
            if sqlite:
                rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}",
                                                  tuple(values))
            else:
                await conn.execute(text("SET LOCAL enable_seqscan = off"))
                await conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
                await conn.exec_driver_sql(f"PREPARE lookup AS {compiled}")
                quoted = ", ".join("'" + str(value).replace("'", "''") + "'"
                                   for value in values)
                rows = list(await conn.exec_driver_sql(f"EXPLAIN EXECUTE lookup({quoted})"))
                await conn.exec_driver_sql("DEALLOCATE lookup")  # the pool reuses sessions
            return "\n".join(" ".join(str(value) for value in row) for row in rows)

    yield explain
    await engine.dispose()


async def test_every_story_lookup_by_session_id_uses_its_index(plan):
    queries = story.queries(SESSION)
    assert set(queries) == set(STORY_INDEXES)
    for kind, statement in queries.items():
        found = await plan(statement)
        assert STORY_INDEXES[kind] in found, f"{kind}:\n{found}"


async def test_an_email_search_uses_the_lowercase_index(plan):
    found = await plan(story.search("Ada@Example.COM"))
    assert "ix_checkout_sessions_customer_email_lower" in found, found


async def test_a_transaction_hash_search_uses_an_index_per_table(plan):
    found = await plan(story.search("0x" + "ab" * 32))
    for index in ("ix_onchain_payments_tx_hash", "ix_checkout_sessions_provider_reference",
                  "ix_outbox_entries_payload_tx_hash"):
        assert index in found, f"{index}:\n{found}"
