"""Amounts and times as people read them, for the pages (never for the API, which keeps the
smallest unit and ISO 8601): ``19.99 USD``, ``0.5 ETH``, ``1 Dec 2026, 19:46 UTC``."""

from datetime import UTC, datetime

from payhook.domain.money import exponent, is_fiat

NOTHING = "—"


def amount(value: int, currency: str, token_decimals: dict[str, int] | None = None) -> str:
    """``value`` in the smallest unit of ``currency``, in whole units with the code after it.

    Fiat keeps all of its minor digits (``5.00 USD``); crypto assets drop trailing zeros
    (``0.5 ETH``) since 18 decimals of zeros say nothing. Exact: integer arithmetic and
    :class:`~decimal.Decimal`, never a float.
    """
    digits = exponent(currency, token_decimals)
    whole, fraction = divmod(abs(value), 10**digits)
    text = f"{whole:,}"
    if digits:
        minor = f"{fraction:0{digits}d}"
        if not is_fiat(currency):
            minor = minor.rstrip("0")
        if minor:
            text = f"{text}.{minor}"
    sign = "-" if value < 0 else ""
    return f"{sign}{text} {currency.upper()}"


def moment(value: datetime | str | None, seconds: bool = False) -> str:
    """``1 Dec 2026, 19:46 UTC`` (``19:46:05`` with ``seconds``, for operators' timelines); an
    ISO 8601 string (as objects carry times) is read first."""
    if value is None:
        return NOTHING
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{value.day} {value:%b %Y, %H:%M{':%S' if seconds else ''}} UTC"


def token_decimals(tokens: tuple[str, ...]) -> dict[str, int]:
    """``PAYHOOK_WEB3_TOKENS`` (``symbol:contract:decimals``, checked at start-up) by symbol."""
    return {symbol: int(decimals) for symbol, _, decimals in
            (token.split(":") for token in tokens)}

