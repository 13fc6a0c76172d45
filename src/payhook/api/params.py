"""The one place a request's path ids and query values are checked, before any query.

An id that is not ``<prefix>_`` and the exact body form of :mod:`payhook.ids` cannot be one of
ours: it is unknown (404, ``param`` naming it) without touching the database, so neither a NUL
(which PostgreSQL text cannot hold) nor a 10 kB value ever reaches a statement. Query values
are refused when they carry text no database can store (:func:`payhook.inputs.storable`) or are
longer than any value we accept. Errors never repeat a hostile value verbatim.
"""

from collections.abc import Callable

from starlette.requests import Request

from payhook import ids, inputs
from payhook.errors import InvalidRequest, NotFound, PayhookError

MAX_QUERY_VALUE = 1024  # far above any id, filter or token a query carries

# What an unknown id is called in the 404's message.
NOUNS = {"cs": "checkout session", "in": "invoice", "key": "API key", "we": "webhook endpoint",
         "ev": "event", "ob": "outbox entry", "mer": "merchant", "dl": "delivery", "evt": "event",
         "an": "anomaly"}


def path_id(request: Request, prefix: str, name: str = "id",
            unknown: Callable[[], PayhookError] | None = None) -> str:
    """The path parameter ``name`` if it has the form of a ``prefix`` id; otherwise the 404
    every unknown id gets (or ``unknown()``, e.g. the access page's 401)."""
    value: str = request.path_params[name]
    if ids.has_prefix(value, prefix):
        return value
    if unknown is not None:
        raise unknown()
    raise NotFound(f"no such {NOUNS.get(prefix, 'object')}", param=name)


def query_value(name: str, value: str) -> str:
    """A query value both databases can hold and no longer than any we accept."""
    if not inputs.storable(value):
        raise InvalidRequest(f"{inputs.shown(name)} {inputs.UNSTORABLE}", param=name)
    if len(value) > MAX_QUERY_VALUE:
        raise InvalidRequest(f"{inputs.shown(name)} is longer than {MAX_QUERY_VALUE} characters",
                             param=name)
    return value
