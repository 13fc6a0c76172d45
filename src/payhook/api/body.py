"""Reading a JSON request body the strict way the contract asks for.

415 unless the body is declared JSON (or form-encoded, where a browser posts a form); 413 past
1 MiB however it is sent (checked while streaming, so a chunked body cannot grow memory past the
limit); 400 for malformed JSON or forms, duplicate keys or fields, ``NaN``/``Infinity``, a top
level that is not an object, and text no database can store (a NUL or an unpaired surrogate) in
any key or string at any depth, naming the top-level field.
"""

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from payhook import inputs
from payhook.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from payhook.strictjson import parse_strict

MAX_BODY_BYTES = 1_048_576
FORM = "application/x-www-form-urlencoded"
_MAX_FORM_FIELDS = 100


async def read_raw(request: Request) -> bytes:
    declared = inputs.unsigned(request.headers.get("content-length", ""), 20)
    if declared is not None and declared > MAX_BODY_BYTES:
        raise PayloadTooLarge("the request body is larger than 1 MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge("the request body is larger than 1 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def is_json_content_type(value: str | None) -> bool:
    return media_type(value) == "application/json"


def require_json_content_type(request: Request) -> None:
    if not is_json_content_type(request.headers.get("content-type")):
        raise UnsupportedMediaType("send the body as Content-Type: application/json")


async def read_object(request: Request, *, forms: bool = False) -> dict[str, Any]:
    """The request's JSON object (with ``forms``, an HTML form's fields too); an empty body
    counts as ``{}``."""
    raw = await read_raw(request)
    if not raw:
        return {}
    declared = media_type(request.headers.get("content-type"))
    if forms and declared == FORM:
        return parse_form(raw)
    if declared != "application/json":
        accepted = f"a form ({FORM}) or JSON" if forms else "Content-Type: application/json"
        raise UnsupportedMediaType(f"send the body as {accepted}")
    document = parse_strict(raw)
    if not isinstance(document, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    field = inputs.unstorable_field(document)
    if field is not None:
        shown = inputs.shown(field)
        raise InvalidRequest(f"{shown}: {inputs.UNSTORABLE}",
                             param=field if shown == field else None)
    return document


def parse_form(raw: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, strictly: UTF-8, ``name=value`` pairs,
    each name once (a repeated field is as ambiguous as a duplicate JSON key)."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          errors="strict", max_num_fields=_MAX_FORM_FIELDS)
    except ValueError:  # bad UTF-8, a pair without "=", too many fields
        raise InvalidRequest("the form body is malformed", code="invalid_form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise InvalidRequest(f"repeated field: {name}", param=name)
        fields[name] = value
    return fields
