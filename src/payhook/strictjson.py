"""JSON as the contract wants it: no duplicate keys, no NaN or Infinity literals."""

import json
from typing import Any

from payhook.errors import InvalidRequest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def parse_strict(raw: bytes) -> Any:
    """Parse JSON, refusing duplicate keys and the non-standard NaN/Infinity literals."""
    try:
        return json.loads(
            raw, object_pairs_hook=_unique_keys, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as error:
        raise InvalidRequest(f"malformed JSON: {error}", code="invalid_json") from None
