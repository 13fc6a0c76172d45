"""Amounts and times as the pages show them."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from payhook.display import amount, moment, token_decimals

TOKENS = token_decimals(("usdc:0x" + "a" * 40 + ":6",))


@pytest.mark.parametrize(("value", "currency", "shown"), [
    (1999, "usd", "19.99 USD"),
    (500, "eur", "5.00 EUR"),
    (1, "gbp", "0.01 GBP"),
    (123456789, "dkk", "1,234,567.89 DKK"),
    (1999, "jpy", "1,999 JPY"),
    (1999, "kwd", "1.999 KWD"),
    (12345, "clf", "1.2345 CLF"),
    (99_999_999_999, "usd", "999,999,999.99 USD"),
    (5 * 10**17, "eth", "0.5 ETH"),
    (10**18, "eth", "1 ETH"),
    (1, "eth", "0.000000000000000001 ETH"),
    (10**30, "eth", "1,000,000,000,000 ETH"),
    (2_500_000, "usdc", "2.5 USDC"),
    (7, "zzz", "7 ZZZ"),  # unknown: shown in its smallest unit, never smaller than it is
])
def test_amounts_in_whole_units_from_the_currencys_exponent(value, currency, shown):
    assert amount(value, currency, TOKENS) == shown


def test_times_in_utc_whatever_they_come_as():
    assert moment(datetime(2026, 12, 1, 19, 46, 59, tzinfo=UTC)) == "1 Dec 2026, 19:46 UTC"
    copenhagen = timezone(timedelta(hours=1))
    assert moment(datetime(2026, 12, 1, 20, 46, tzinfo=copenhagen)) == "1 Dec 2026, 19:46 UTC"
    assert moment("2026-01-09T08:05:00+00:00") == "9 Jan 2026, 08:05 UTC"
    assert moment(datetime(2026, 3, 4, 5, 6)) == "4 Mar 2026, 05:06 UTC"  # naive is UTC
    assert moment(None) == "—"
    assert moment("2026-12-01T19:46:05+00:00", seconds=True) == "1 Dec 2026, 19:46:05 UTC"

