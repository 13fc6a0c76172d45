"""The outbox's readers keep their plans when the statistics lie, on both databases.

The table is loaded with finished rows and analyzed (autovacuum off), then a backlog arrives
that no ANALYZE has seen: due rows, expired leases, dead and retrying rows, unfinished on-chain
checks. On statistics that say the queue is empty, the claim must still read its two partial
indexes in their order, with no Sort: a (status, kind) index once let the planner take every
pending row and sort them (7.8 ms a claim at 12,400 due, bench/plans.py). The operators' lists,
the console's counts, the bulk replay and the retention rule for on-chain checks must still go
through an index. Plans are read with EXPLAIN, never run: on PostgreSQL both the custom plan
(the values known) and the generic plan a plan cache may settle on (no values: a partial
index's predicate sent as a parameter proves nothing there, nor on SQLite); on SQLite
EXPLAIN QUERY PLAN. The statements are the ones the code builds, taken from a stand-in
connection.
"""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.pagination import PageRequest
from payhook.db.tables import outbox_entries as outbox
from payhook.domain.decisions import ONCHAIN_CHECK
from payhook.outbox import operators, store
from payhook.services import replay_plan, retention, triage

FINISHED = 20_000
KINDS = ("invoice.create", "access_link.create", "merchant.notify", "delivery.send",
         ONCHAIN_CHECK)
PG_MODES = ("custom", "generic")


class _Answer:
    """No rows, whatever is asked of a result."""

    def all(self) -> list[Any]:
        return []

    def first(self) -> None:
        return None

    def scalar_one(self) -> int:
        return 0

    def scalars(self) -> list[Any]:
        return []

    def __iter__(self):
        return iter(())


class _Capture:
    """Stands in for a connection: keeps the statements the code asks it to run."""

    def __init__(self) -> None:
        self.statements: list[Any] = []

    async def execute(self, statement: Any, *arguments: Any) -> _Answer:
        self.statements.append(statement)
        return _Answer()

    async def scalar(self, statement: Any, *arguments: Any) -> None:
        self.statements.append(statement)


async def _first_statement(call) -> Any:
    capture = _Capture()
    await call(capture)
    return capture.statements[0]


@pytest.fixture
async def engine(database_url):
    """The database with a backlog its statistics have not seen."""
    engine = create_engine(database_url)
    now = clock.now()
    old = now - timedelta(days=3)
    rows = [{"id": f"ob_{n:08d}", "kind": KINDS[n % len(KINDS)],
             "payload": {"session_id": f"cs_{n // 5:08d}", "event": f"ev_{n:08d}"},
             "status": "done", "attempts": 1, "max_attempts": 10,
             "next_attempt_at": old + timedelta(seconds=n), "errors": [],
             "created_at": old + timedelta(seconds=n), "updated_at": old + timedelta(seconds=n)}
            for n in range(FINISHED)]
    postgres = engine.dialect.name == "postgresql"
    async with engine.begin() as conn:
        if postgres:
            await conn.execute(text(
                "ALTER TABLE outbox_entries SET (autovacuum_enabled = false)"))
        await conn.execute(insert(outbox), rows)
    if postgres:  # SQLite's statistics are what the embedded default has: none (no ANALYZE)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE outbox_entries"))
    newest = FINISHED - 1
    backlog = [  # (first, last) row numbers, newest first, and what they become
        (newest - 2_999, newest, {"status": "pending", "attempts": 0, "next_attempt_at": now}),
        (newest - 3_199, newest - 3_000, {"status": "running", "locked_by": "gone",
                                          "locked_until": now - timedelta(minutes=1)}),
        (newest - 3_399, newest - 3_200, {"status": "dead"}),
        (newest - 3_599, newest - 3_400, {"status": "pending", "attempts": 3,
                                          "next_attempt_at": now + timedelta(minutes=5)}),
    ]
    async with engine.begin() as conn:
        for first, last, values in backlog:
            await conn.execute(update(outbox).where(
                outbox.c.id.between(f"ob_{first:08d}", f"ob_{last:08d}")).values(**values))
    yield engine
    await engine.dispose()


async def _plans(engine, statement: Any) -> list[tuple[str, Any]]:
    """(mode, plan) of ``statement`` as the application sends it: on PostgreSQL its custom and
    generic plans, each as EXPLAIN's JSON tree; on SQLite the EXPLAIN QUERY PLAN rows."""
    compiled = statement.compile(dialect=engine.dialect,
                                 compile_kwargs={"render_postcompile": True})
    values = [compiled.params[name] for name in compiled.positiontup]
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(values))
            return [("sqlite", [tuple(row) for row in rows])]
        quoted = ", ".join("'" + str(value).replace("'", "''") + "'" for value in values)
        execute = f"EXECUTE chosen({quoted})" if values else "EXECUTE chosen"
        plans = []
        for mode in PG_MODES:
            await conn.execute(text(f"SET plan_cache_mode = force_{mode}_plan"))
            await conn.exec_driver_sql(f"PREPARE chosen AS {compiled}")
            found = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {execute}")
            await conn.exec_driver_sql("DEALLOCATE chosen")  # the pool reuses sessions
            tree = found.scalar_one()  # asyncpg decodes json, another driver may not
            plans.append((mode, (json.loads(tree) if isinstance(tree, str) else tree)[0]["Plan"]))
        await conn.execute(text("RESET plan_cache_mode"))
        return plans


def _pg_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(found for child in node.get("Plans", ()) for found in _pg_nodes(child))]


def _sqlite_subtree(rows: list[tuple[Any, ...]], detail: str) -> list[str]:
    """The details under (and of) the first row whose detail ends with ``detail``."""
    top = next(row[0] for row in rows if row[3].endswith(detail))
    inside, found = {top}, []
    for row_id, parent, _, text_ in rows:
        if row_id in inside or parent in inside:
            inside.add(row_id)
            found.append(text_)
    return found


def _cte(mode: str, plan: Any, name: str) -> list[str]:
    """One line per node of the plan of CTE ``name``: its type and the index it reads."""
    if mode == "sqlite":
        return _sqlite_subtree(plan, f" {name}")
    cte = next(node for node in _pg_nodes(plan) if node.get("Subplan Name") == f"CTE {name}")
    return [f"{node['Node Type']} {node.get('Index Name', '')}" for node in _pg_nodes(cte)]


def _lines(mode: str, plan: Any) -> str:
    if mode == "sqlite":
        return "\n".join(row[3] for row in plan)
    return "\n".join(f"{node['Node Type']} {node.get('Relation Name', '')} "
                     f"{node.get('Index Name', '')}" for node in _pg_nodes(plan))


async def test_the_claim_reads_its_partial_indexes_in_order_on_stale_statistics(engine):
    now = clock.now()
    statement = store.claim_statement("worker", 200, now + timedelta(seconds=60), now)
    await _assert_claim_in_order(engine, statement)


async def _assert_claim_in_order(engine, statement: Any) -> None:
    for mode, plan in await _plans(engine, statement):
        for cte, index in (("pending", "ix_outbox_entries_due"),
                           ("abandoned", "ix_outbox_entries_leased")):
            nodes = _cte(mode, plan, cte)
            shown = f"{mode}, CTE {cte}:\n" + "\n".join(nodes)
            assert any(index in node for node in nodes), shown
            assert not any(node.startswith("Sort") or "TEMP B-TREE" in node
                           for node in nodes), shown


async def test_the_next_due_time_reads_the_due_index_in_order(engine):
    statement = await _first_statement(store.next_due_at)
    await _assert_indexed(engine, statement, "ix_outbox_entries_due", ordered=True)


# A retrying row is pending: on statistics that call the queue empty, its planner sees two
# indexes of pending rows that each hold none and may read either (the due one costs every
# pending row, as the (status, kind) index did). On fresh ones a list reads its own (the last
# test).
INDEXES = {"dead": ("ix_outbox_entries_dead",),
           "retrying": ("ix_outbox_entries_retrying", "ix_outbox_entries_due")}


def _outbox_list(view: str, kind: str | None):
    return _first_statement(lambda conn: triage.outbox_rows(
        conn, PageRequest(limit=50), view, kind))


def _outbox_count(view: str) -> Any:
    # What the console's home page counts (api/console/views.py).
    return select(func.count()).select_from(outbox).where(*triage.outbox_filters(view))


@pytest.mark.parametrize("view", ["dead", "retrying"])
@pytest.mark.parametrize("kind", [None, "delivery.send"])
async def test_the_lists_of_dead_and_retrying_rows_use_an_index_of_theirs(engine, view, kind):
    await _assert_indexed(engine, await _outbox_list(view, kind), *INDEXES[view],
                          ordered=view == "dead")


@pytest.mark.parametrize("view", ["dead", "retrying"])
async def test_the_console_counts_use_an_index_of_theirs(engine, view):
    await _assert_indexed(engine, _outbox_count(view), *INDEXES[view])


@pytest.mark.parametrize("kind", [None, "delivery.send"])
async def test_the_operators_dead_rows_and_their_replay_use_the_dead_index(engine, kind):
    for call, ordered in (
            (lambda conn: operators.list_entries(conn, PageRequest(limit=50), "dead", kind), True),
            (lambda conn: operators.replay_dead(conn, "test", kind, dry_run=True), False),
            (lambda conn: replay_plan.preview(conn, kind), True)):  # oldest first
        await _assert_indexed(engine, await _first_statement(call), "ix_outbox_entries_dead",
                              ordered=ordered)


async def test_retention_asks_the_unfinished_onchain_checks_by_their_index(engine):
    statement = retention.batch_statement(retention.RULES["webhook_events"], clock.now(),
                                          retention.BATCH)
    await _assert_indexed(engine, statement, "ix_outbox_entries_onchain_checks")


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_on_fresh_statistics_the_retrying_list_is_read_in_its_own_index(engine):
    """Once ANALYZE has seen the backlog, a page of retrying rows is read newest first from
    their index, not sorted out of every pending row; the claim keeps its plan. (A count of
    them may still read the due index: the planner takes the retrying rows for every pending
    row that was ever attempted, as if status and attempts were independent.)"""
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE outbox_entries"))
    for kind in (None, "delivery.send"):
        await _assert_indexed(engine, await _outbox_list("retrying", kind),
                              "ix_outbox_entries_retrying", ordered=True)
    now = clock.now()
    statement = store.claim_statement("worker", 200, now + timedelta(seconds=60), now)
    await _assert_claim_in_order(engine, statement)


async def _assert_indexed(engine, statement: Any, *indexes: str, ordered: bool = False) -> None:
    """The plans read one of ``indexes``, never the whole table; ``ordered``: in the order the
    statement asks, nothing sorted."""
    for mode, plan in await _plans(engine, statement):
        shown = f"{mode}:\n{_lines(mode, plan)}"
        assert any(index in shown for index in indexes), shown
        assert "Seq Scan outbox_entries" not in shown, shown
        assert "SCAN outbox_entries\n" not in shown + "\n", shown
        if ordered:
            assert "Sort" not in shown and "TEMP B-TREE" not in shown, shown
