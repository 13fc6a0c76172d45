"""Request bodies, validated strictly (no coercion: ``"100"`` and ``true`` are not integers).

Rules that depend on the caller (the key's mode, configured crypto assets) read the validation
context: ``{"mode": "test" | "live", "crypto": frozenset[str]}``.
"""

import re
import unicodedata
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from payhook import ids
from payhook import schema_hints as hints
from payhook.domain import money, onchain
from payhook.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)

_EMAIL = re.compile(r"^[^@\s,;<>()\[\]\\\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in hints.CONTROL_CATEGORIES for char in value)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SessionCreate(Strict):
    """The JSON Schema says what the validators below check (:mod:`payhook.schema_hints`); the
    currency enum depends on the configuration, so :mod:`payhook.api.openapi` adds it."""

    model_config = ConfigDict(json_schema_extra=hints.FIAT_AMOUNTS)

    amount: Annotated[StrictInt, Field(json_schema_extra=hints.AMOUNT)]
    currency: Annotated[StrictStr, Field(json_schema_extra=hints.CURRENCY)]
    success_url: Annotated[StrictStr, Field(max_length=2048,
                                            json_schema_extra=hints.REDIRECT_URL)] | None = None
    cancel_url: Annotated[StrictStr, Field(max_length=2048,
                                           json_schema_extra=hints.REDIRECT_URL)] | None = None
    customer_email: Annotated[StrictStr, Field(max_length=254,
                                               json_schema_extra=hints.EMAIL)] | None = None
    customer_name: Annotated[StrictStr, Field(max_length=200,
                                              json_schema_extra=hints.printable)] | None = None
    metadata: Annotated[dict[Annotated[str, Field(max_length=40)],
                             Annotated[StrictStr, Field(max_length=500)]],
                        Field(max_length=20, json_schema_extra=hints.METADATA)
                        ] = Field(default_factory=dict)
    expires_in: Annotated[StrictInt, Field(ge=60, le=604_800,
                                           json_schema_extra=hints.SECONDS)] = 86_400

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str, info: ValidationInfo) -> str:
        crypto = (info.context or {}).get("crypto", frozenset())
        if money.is_fiat(value) or value in crypto:
            return value
        if value == onchain.NATIVE and not crypto:  # refused, not unknown: say why
            raise ValueError("eth is not accepted: crypto payments need a deposit key "
                             "(PAYHOOK_WEB3_XPUB) configured")
        raise ValueError("must be a lowercase ISO 4217 code or a configured crypto asset")

    @field_validator("success_url", "cancel_url")
    @classmethod
    def _redirect_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        allowed = ("https",) if (info.context or {}).get("mode") == "live" else ("http", "https")
        check_url(value, allowed)
        return value

    @field_validator("customer_email")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is not None and (has_control_characters(value) or not _EMAIL.match(value)):
            raise ValueError("must be one e-mail address")
        return value

    @field_validator("customer_name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        if value is not None and has_control_characters(value):
            raise ValueError("must not contain control characters")
        return value

    @model_validator(mode="after")
    def _amount_in_range(self) -> "SessionCreate":
        limit = money.amount_limit(self.currency)
        if not 1 <= self.amount <= limit:
            raise _field_error("amount", f"must be between 1 and {limit} for {self.currency}")
        return self


class AdminSessionCreate(SessionCreate):
    merchant_id: Annotated[StrictStr, Field(json_schema_extra=hints.MERCHANT_ID)]
    mode: Literal["test", "live"]

    @field_validator("merchant_id")
    @classmethod
    def _merchant_id(cls, value: str) -> str:
        if not ids.has_prefix(value, "mer"):  # never looked up: it cannot be one
            raise ValueError("must be a merchant id (mer_…)")
        return value


class MerchantCreate(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200,
                                     json_schema_extra=hints.printable_not_blank)]

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if has_control_characters(value) or not value.strip():
            raise ValueError("must be printable and not blank")
        return value


class ApiKeyCreate(Strict):
    label: Annotated[StrictStr, Field(max_length=200)] | None = None


class AdminApiKeyCreate(ApiKeyCreate):
    """An operator's new key for a merchant: the mode is named, not taken from a caller's key."""

    mode: Literal["test", "live"]


class AccessReveal(Strict):
    """The access link's token, sent in the body of the reveal (a form or JSON); a missing
    token is the same 401 as a wrong one, so it is optional here."""

    token: StrictStr | None = None


class WebhookEndpointCreate(Strict):
    """Where to deliver events: an ``https`` URL (``http`` too in test mode) that httpx, which
    will POST to it, can parse (whether its host is public is checked by :mod:`payhook.net`,
    which needs to resolve it, after this)."""

    url: Annotated[StrictStr, Field(max_length=2048, json_schema_extra=hints.ENDPOINT_URL)]

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        allowed = ("https",) if (info.context or {}).get("mode") == "live" else ("http", "https")
        check_url(value, allowed)
        check_fetchable(value)
        return value


class ReplayOne(Strict):
    reason: Annotated[StrictStr, Field(max_length=1000)] | None = None


class ReplayMany(ReplayOne):
    status: Literal["dead"]
    kind: Annotated[StrictStr, Field(min_length=1, max_length=40)] | None = None


class Empty(Strict):
    """A body that must carry no fields (e.g. cancel)."""


class _FieldError(ValueError):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


def _field_error(param: str, message: str) -> _FieldError:
    return _FieldError(param, message)


def check_url(value: str, schemes: tuple[str, ...]) -> None:
    """An absolute URL with a host, no userinfo, no whitespace or control characters."""
    if has_control_characters(value) or any(char.isspace() for char in value) or "\\" in value:
        raise ValueError("must not contain whitespace, backslashes or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme.lower() not in schemes:
        raise ValueError(f"must be an absolute {' or '.join(schemes)} URL")
    if "@" in parts.netloc:
        raise ValueError("must not contain credentials (userinfo)")
    if not parts.hostname:
        raise ValueError("must have a host")


def check_fetchable(value: str) -> None:
    """A URL httpx can send a request to: ``http://☃.net/`` passes :func:`check_url` but its
    host is no valid IDNA name, so httpx refuses it (and an invalid ``xn--`` label only once
    the host is decoded)."""
    try:
        httpx.URL(value).host  # noqa: B018 - decoding the host is the check
    except (httpx.InvalidURL, ValueError) as error:  # idna's errors are ValueErrors
        raise ValueError(f"is not a URL that can be requested ({error})") from None


def parse(model: type[M], document: dict[str, Any], **context: Any) -> M:
    """Validate ``document`` or raise :class:`InvalidRequest` naming the first bad field."""
    try:
        return model.model_validate(document, context=context)
    except ValidationError as error:
        raise _invalid(error) from None


def _invalid(error: ValidationError) -> InvalidRequest:
    first = error.errors()[0]
    context_error = (first.get("ctx") or {}).get("error")
    if isinstance(context_error, _FieldError):
        return InvalidRequest(f"{context_error.param}: {context_error}",
                              param=context_error.param)
    param = str(first["loc"][0]) if first["loc"] else None
    if first["type"] == "extra_forbidden":
        return InvalidRequest(f"unknown field: {param}", param=param, code="parameter_unknown")
    if first["type"] == "missing":
        return InvalidRequest(f"missing required field: {param}", param=param,
                              code="parameter_missing")
    message = first["msg"].removeprefix("Value error, ")
    return InvalidRequest(f"{param}: {message}" if param else message, param=param)
