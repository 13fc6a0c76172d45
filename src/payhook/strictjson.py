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


# One decoder for every document (json.loads with a hook builds a new one per call).
_decoder = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_reject_constant)


def parse_strict(raw: bytes) -> Any:
    """Parse JSON, refusing duplicate keys and the non-standard NaN/Infinity literals. The
    bytes are read as :func:`json.loads` reads them (UTF-8, -16 or -32, a BOM dropped)."""
    try:
        return _decoder.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError) as error:
        raise InvalidRequest(f"malformed JSON: {error}", code="invalid_json") from None
