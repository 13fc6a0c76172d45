"""Statements spelt once for PostgreSQL and SQLite, and the set-based ones batch handlers share."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, bindparam, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.db.tables import checkout_sessions as sessions


def written(value: str | int) -> Any:
    """``value`` written into the SQL, not sent as a parameter: where a query meets a partial
    index's predicate (``status = 'pending'``). A database proves a predicate only from values
    it sees — PostgreSQL's generic plans and SQLite never from a parameter — and else reads
    another index, or all rows, and sorts them."""
    return literal(value, literal_execute=True)


def insert_ignoring_conflicts(conn: AsyncConnection, table: Table) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the connection's dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


async def update_each(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]],
                      *where: Any, **fixed: Any) -> None:
    """One executemany ``UPDATE``: each row names its ``id`` and the values to set (every row
    the same columns), ``where`` adds conditions and ``fixed`` values shared by all rows."""
    if not rows:
        return
    columns = [column for column in rows[0] if column != "id"]
    statement = (update(table).where(table.c.id == bindparam("_id"), *where)
                 .values({**{column: bindparam(f"_{column}") for column in columns}, **fixed}))
    await conn.execute(statement, [{"_id": row["id"], **{f"_{column}": row[column]
                                                         for column in columns}}
                                   for row in rows])


async def paid_sessions(conn: AsyncConnection, session_ids: Iterable[str], *columns: Any,
                        lock: bool = False) -> dict[str, Any]:
    """The paid sessions among these ids (the columns given, else all), by id; a missing id
    is a LookupError: an effect of a paid session needs its session paid. ``lock`` takes the
    rows' locks (PostgreSQL; SQLite has one writer) for a read-then-write."""
    wanted = set(session_ids)
    query = (select(sessions.c.id, *columns) if columns else select(sessions)).where(
        sessions.c.id.in_(wanted), sessions.c.status == "paid")
    found = {row.id: row for row in await conn.execute(
        query.with_for_update() if lock else query)}
    if missing := wanted - set(found):
        raise LookupError(f"no paid session {', '.join(sorted(missing))}")
    return found


def postgres_type(column: Column[Any]) -> str:
    """The column's type as a PostgreSQL cast for raw SQL; text for any string (a cast to
    ``varchar(n)`` would cut a longer value where the column refuses it)."""
    compiled = str(column.type.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    return "text" if compiled.startswith("VARCHAR") else compiled.lower()
