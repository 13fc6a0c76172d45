"""A JSON document's member as text, written the same way in an expression index and in the
queries that must use it.

SQLAlchemy sends a JSON key (``payload["session_id"]``) as a bound parameter, and a database
matches an expression index only to the very same expression — PostgreSQL's generic plans and
SQLite never to one whose key is a parameter. So the key is written into the SQL, in each
dialect's form: ``'session_id'`` for ``->>``, ``'$."session_id"'`` for SQLite's JSON path.
"""

import re
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

NAME = re.compile(r"[a-z_][a-z0-9_]*")  # written into SQL: a plain name only


class _Key(ColumnElement[str]):
    inherit_cache = True
    _traverse_internals = [("name", InternalTraversal.dp_string)]
    type = String()

    def __init__(self, name: str) -> None:
        if not NAME.fullmatch(name):
            raise ValueError(f"not a plain JSON member name: {name!r}")
        self.name = name


@compiles(_Key)
def _key(element: _Key, compiler: Any, **kw: Any) -> str:
    return f"'{element.name}'"


@compiles(_Key, "sqlite")
def _sqlite_path(element: _Key, compiler: Any, **kw: Any) -> str:
    return f"'$.\"{element.name}\"'"


def member(document: Any, name: str) -> ColumnElement[str]:
    """``document[name]`` as text, its key written in (see the module's docstring)."""
    expression: ColumnElement[str] = document[_Key(name)].as_string()
    return expression
