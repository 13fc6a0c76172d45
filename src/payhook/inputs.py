"""What untrusted text must look like before it reaches a query or a row.

PostgreSQL text (and a jsonb string) cannot hold NUL, where SQLite stores it, and neither can
encode an unpaired surrogate (JSON's ``"\ud800"``) as UTF-8; ``str.isdigit``
accepts ``"²"`` (which ``int`` refuses) and ``"３"`` (which ``int`` reads as 3), and ``int`` of
more than 4300 digits raises. Every check here is cheap and runs before any database work:
:mod:`payhook.api.params` applies them to paths and queries, :mod:`payhook.api.body` to bodies,
the providers to what a signed event names.
"""

from typing import Any

NUL = "\x00"
UNSTORABLE = "must not contain NUL or unpaired surrogate characters"
_SHOWN = 40  # how much of a refused value an error message may repeat


def storable(value: str) -> bool:
    """Whether both databases can store ``value`` as text: no NUL, and valid UTF-8."""
    if NUL in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


def unsigned(value: str, max_digits: int) -> int | None:
    """``value`` as a number if it is 1 to ``max_digits`` ASCII digits, else None."""
    if not 0 < len(value) <= max_digits or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def unstorable_field(document: dict[str, Any]) -> str | None:
    """The first top-level key of ``document`` that holds text no database can store, in
    itself or anywhere in its value (keys and strings, at any depth); None when none does."""
    for key, value in document.items():
        if not storable(key) or _holds_unstorable(value):
            return key
    return None


def _holds_unstorable(value: Any) -> bool:
    # A loop, not recursion: a body nested as deep as the JSON parser allows must not overflow.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not storable(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def shown(value: str) -> str:
    """``value`` as an error message may repeat it: printable and short."""
    if value.isprintable() and len(value) <= _SHOWN:
        return value
    return repr(value[:_SHOWN]) + ("…" if len(value) > _SHOWN else "")
