"""Reading a JSON request body the strict way the contract asks for.

415 unless the body is declared JSON; 413 past 1 MiB however it is sent (checked while
streaming, so a chunked body cannot grow memory past the limit); 400 for malformed JSON,
duplicate keys, ``NaN``/``Infinity``, a top level that is not an object, and text no database
can store (a NUL or an unpaired surrogate) in any key or string at any depth, naming the
top-level field.
"""

from typing import Any

from starlette.requests import Request

from payhook import inputs
from payhook.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from payhook.strictjson import parse_strict

MAX_BODY_BYTES = 1_048_576


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


def is_json_content_type(value: str | None) -> bool:
    media_type = (value or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def require_json_content_type(request: Request) -> None:
    if not is_json_content_type(request.headers.get("content-type")):
        raise UnsupportedMediaType("send the body as Content-Type: application/json")


async def read_object(request: Request) -> dict[str, Any]:
    """The request's JSON object; an empty body counts as ``{}``."""
    raw = await read_raw(request)
    if not raw:
        return {}
    require_json_content_type(request)
    document = parse_strict(raw)
    if not isinstance(document, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    field = inputs.unstorable_field(document)
    if field is not None:
        shown = inputs.shown(field)
        raise InvalidRequest(f"{shown}: {inputs.UNSTORABLE}",
                             param=field if shown == field else None)
    return document
