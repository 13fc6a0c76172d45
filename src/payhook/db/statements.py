"""Statements spelt once for PostgreSQL and SQLite, and the set-based ones batch handlers share.

On PostgreSQL a batch's values go as one array parameter per column (``= ANY``, ``unnest``), so
a statement's text is the same for any number of rows: asyncpg prepares it once per connection
and the server runs it once, where an expanded ``IN (…)`` list is a new statement for every
batch size and an executemany runs once per row. SQLite, with no arrays, expands the list.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import ARRAY, TypeEngine

from payhook.db.tables import checkout_sessions as sessions


def written(value: str | int) -> Any:
    """``value`` written into the SQL, not sent as a parameter: where a query meets a partial
    index's predicate (``status = 'pending'``). A database proves a predicate only from values
    it sees — PostgreSQL's generic plans and SQLite never from a parameter — and else reads
    another index, or all rows, and sorts them."""
    return literal(value, literal_execute=True)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def _insert(conn: AsyncConnection, table: Table) -> Any:
    """``INSERT`` in the connection's dialect (which spells ``ON CONFLICT``)."""
    return (postgresql if is_postgres(conn) else sqlite).insert(table)


def insert_ignoring_conflicts(conn: AsyncConnection, table: Table) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the connection's dialect."""
    return _insert(conn, table).on_conflict_do_nothing()


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]],
                      *returning: Any, ignore_conflicts: bool = False) -> Sequence[Any]:
    """Insert ``rows`` (every row the same columns) in one statement — on PostgreSQL
    ``INSERT … SELECT`` of the rows unnested from one array per column, compiled once for
    each table and set of columns (:class:`Compiled`) — optionally ``ON CONFLICT DO
    NOTHING``; answers the ``returning`` columns of the rows inserted."""
    if not rows:
        return []
    if is_postgres(conn):
        names = tuple(rows[0])
        statement = _postgres_insert(table, names, ignore_conflicts, returning)
        result = await statement.execute(conn, **{
            f"v_{name}": _array_values(table.c[name], [row[name] for row in rows])
            for name in names})
        return result.all() if returning else []
    inserting = _insert(conn, table)
    if ignore_conflicts:
        inserting = inserting.on_conflict_do_nothing()
    if returning:
        inserting = inserting.returning(*returning)
    result = await conn.execute(inserting, list(rows))
    return result.all() if returning else []


@cache
def _postgres_insert(table: Table, names: tuple[str, ...], ignore_conflicts: bool,
                     returning: tuple[Any, ...]) -> "Compiled":
    statement: Any = postgresql.insert(table).from_select(list(names), select(*(
        _as_column(table.c[name], func.unnest(_array(table.c[name], name=f"v_{name}")))
        for name in names)))
    if ignore_conflicts:
        statement = statement.on_conflict_do_nothing()
    if returning:
        statement = statement.returning(*returning)
    return Compiled(statement)


class Compiled:
    """A PostgreSQL statement compiled once (its literals rendered) and run through
    ``exec_driver_sql`` with its values by name: no construct, compile or cache key per call,
    and no per-value processing — each value goes to asyncpg as it is (plain strings, numbers,
    aware datetimes, lists of them), where a parameter not given keeps its compiled value. For
    the statements run once per claimed batch; the rest go through SQLAlchemy."""

    def __init__(self, statement: Any):
        compiled = statement.compile(dialect=postgresql.asyncpg.dialect(),  # type: ignore[no-untyped-call]
                                     compile_kwargs={"render_postcompile": True})
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        self.defaults = dict(compiled.params)

    async def execute(self, conn: AsyncConnection, **values: Any) -> Any:
        return await conn.exec_driver_sql(self.sql, tuple(
            values[name] if name in values else self.defaults[name] for name in self.names))


def array_of(column: Any, name: str | None = None, values: Iterable[Any] | None = None) -> Any:
    """An array parameter of the column's type, named or given its values — a string column's
    as ``text[]``: a cast to ``varchar(n)[]`` would cut a longer value, which could then match
    another row."""
    item: TypeEngine[Any] = String() if isinstance(column.type, String) else column.type
    return bindparam(name, None if values is None else list(values), type_=ARRAY(item))


def _array(column: Any, values: Iterable[Any] | None = None, name: str | None = None) -> Any:
    """One array parameter of the column's type (:func:`array_of`), given its ``values`` or
    named to be given them when it runs; a JSON document's as the text of each (an array
    parameter would take a list for a dimension)."""
    given = None if values is None else _array_values(column, values)
    if isinstance(column.type, JSON):
        return bindparam(name, given, type_=ARRAY(Text()))
    return array_of(column, name, given)


def _array_values(column: Any, values: Iterable[Any]) -> list[Any]:
    """The values of an :func:`_array` parameter: a JSON document's as its text."""
    if isinstance(column.type, JSON):
        return [None if value is None else document_text(value) for value in values]
    return list(values)


def _as_column(column: Any, value: Any) -> Any:
    """A value of :func:`_array`'s column read back as the column's type (documents: text)."""
    return cast(value, JSONB) if isinstance(column.type, JSON) else value


# A JSON document as the text PostgreSQL casts to jsonb: one encoder for every document
# (json.dumps with options builds a new one per call).
document_text = json.JSONEncoder(separators=(",", ":"), default=str).encode


def among(conn: AsyncConnection, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(array)``, one statement for any count."""
    condition: ColumnElement[bool] = (column == any_(_array(column, values))
                                      if is_postgres(conn) else column.in_(list(values)))
    return condition


async def update_each(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]],
                      *where: Any, **fixed: Any) -> None:
    """One ``UPDATE`` of many rows: each row names its ``id`` and the values to set (every row
    the same columns), ``where`` adds conditions and ``fixed`` values shared by all rows. On
    PostgreSQL one statement joined to the rows unnested (``UPDATE … FROM unnest(…)``: each id
    at most once), elsewhere an executemany."""
    if not rows:
        return
    columns = [column for column in rows[0] if column != "id"]
    if is_postgres(conn):
        names = ["id", *columns]
        given = func.unnest(*(_array(table.c[name], [row[name] for row in rows])
                              for name in names)).table_valued(*names).render_derived(name="v")
        await conn.execute(update(table).where(table.c.id == given.c.id, *where)
                           .values({**{column: _as_column(table.c[column], given.c[column])
                                       for column in columns}, **fixed}))
        return
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
        among(conn, sessions.c.id, wanted), sessions.c.status == "paid")
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
