"""What the JSON Schema of each request body says beyond types and lengths, so that a client
generator or a fuzzer produces what :mod:`payhook.schemas` accepts.

Where a validator's rule has no regular expression (Unicode categories beyond the BMP, what
``urlsplit`` accepts) the pattern describes a safe subset, and the description says the rule.
"""

import functools
import unicodedata
from typing import Any

from payhook import ids
from payhook.domain import money

JsonDict = dict[str, Any]  # what pydantic's json_schema_extra takes
CONTROL_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")
STORABLE = "^[^\\u0000]*$"  # api/body.py refuses a NUL in every string of every body
_PORT = (r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}"
         r"|[0-9]{1,4}))?")
URL_PATTERN = (r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?" + _PORT
               + r"(?:[/?#][!#-\[\]-~]*)?$")
EMAIL_PATTERN = (r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                 r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")

AMOUNT: JsonDict = {"minimum": 1, "maximum": money.CRYPTO_MAX, "description": (
    f"in the currency's smallest unit: 1 to {money.FIAT_MAX} for fiat, 1 to 10^30 for crypto "
    "assets (wei for eth); a JSON integer literal (100.0 and \"100\" are refused)")}
SECONDS: JsonDict = {"description": "seconds, a JSON integer literal"}
CURRENCY: JsonDict = {
    "description": "a lowercase ISO 4217 code in use, or a configured crypto asset"}
FIAT_AMOUNTS: JsonDict = {"allOf": [{
    "if": {"properties": {"currency": {"enum": sorted(money.FIAT)}}, "required": ["currency"]},
    "then": {"properties": {"amount": {"maximum": money.FIAT_MAX}}},
}]}
REDIRECT_URL: JsonDict = {"format": "uri", "pattern": URL_PATTERN, "description": (
    "an absolute URL with a host, no userinfo, whitespace, backslash or control characters; "
    "https (http is also accepted in test mode)")}
ENDPOINT_URL: JsonDict = {"format": "uri", "pattern": URL_PATTERN, "description": (
    "an absolute http(s) URL with a host, no userinfo, whitespace, backslash or control "
    "characters, whose host is public")}
EMAIL: JsonDict = {"format": "email", "pattern": EMAIL_PATTERN,
                   "description": "one address, no whitespace or control characters"}
METADATA: JsonDict = {
    "description": "at most 20 keys of at most 40 characters, string values of at most 500"}
MERCHANT_ID: JsonDict = {"pattern": ids.pattern("mer"), "description": "a merchant id (mer_…)"}


@functools.cache
def _controls() -> str:
    """The BMP's control, format and separator characters, as a regex class body."""
    ranges: list[list[int]] = []
    for code in range(0x10000):
        if unicodedata.category(chr(code)) in CONTROL_CATEGORIES:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}"
                   for low, high in ranges)


def printable(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a text without control characters (computed when described)."""
    schema["pattern"] = f"^[^{_controls()}]*$"
    schema["description"] = "no control or format characters"


def printable_not_blank(schema: dict[str, Any]) -> None:
    controls = _controls()
    schema["pattern"] = f"^[^{controls}]*[^\\s{controls}][^{controls}]*$"
    schema["description"] = "printable, not blank"


def refuse_nul(schema: Any) -> None:
    """Give every string of a request body's schema, keys included, the pattern that refuses
    NUL, unless its own pattern already says more."""
    if isinstance(schema, list):
        for item in schema:
            refuse_nul(item)
    elif isinstance(schema, dict):
        if schema.get("type") == "string":
            schema.setdefault("pattern", STORABLE)
        if isinstance(schema.get("propertyNames"), dict):
            schema["propertyNames"].setdefault("pattern", STORABLE)
        for value in schema.values():
            refuse_nul(value)
