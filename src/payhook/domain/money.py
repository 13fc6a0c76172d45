"""Currencies and amount ranges (docs/api.md, Conventions)."""

# ISO 4217 codes in use, lowercase. Left out on purpose: funds and precious metals (xau, xag,
# xpd, xpt, xba…xbd, xdr, xsu, xua, xts, xxx) and codes withdrawn from circulation.
FIAT = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob bov brl bsd btn
    bwp byn bzd cad cdf che chf chw clf clp cny cop cou crc cuc cup cve czk djf dkk dop dzd egp
    ern etb eur fjd fkp gbp gel ghs gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr iqd irr isk
    jmd jod jpy kes kgs khr kmf kpw krw kwd kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk
    mnt mop mru mur mvr mwk mxn mxv myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln
    pyg qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp szl thb
    tjs tmt tnd top try ttd twd tzs uah ugx usd usn uyi uyu uyw uzs ved ves vnd vuv wst xaf xcd
    xcg xof xpf yer zar zmw zwg zwl
    """.split()
)

FIAT_MAX = 99_999_999_999
CRYPTO_MAX = 10**30


def is_fiat(currency: str) -> bool:
    return currency in FIAT


def amount_limit(currency: str) -> int:
    """The largest amount the contract accepts in this currency's smallest unit."""
    return FIAT_MAX if is_fiat(currency) else CRYPTO_MAX


# ISO 4217 minor units where they are not 2 (the list's own exponents, not usage: HUF stays 2).
_MINOR_UNITS = {
    **dict.fromkeys("bif clp djf gnf isk jpy kmf krw pyg rwf ugx uyi vnd vuv xaf xof xpf".split(),
                    0),
    **dict.fromkeys("bhd iqd jod kwd lyd omr tnd".split(), 3),
    "clf": 4, "uyw": 4,
}
ETH_DECIMALS = 18


def exponent(currency: str, token_decimals: dict[str, int] | None = None) -> int:
    """How many digits of the smallest unit make one unit of ``currency``: ISO 4217's minor
    units for fiat, 18 for ``eth``, a configured token's decimals; 0 for anything unknown, so
    an amount is never shown smaller than it is."""
    if is_fiat(currency):
        return _MINOR_UNITS.get(currency, 2)
    if currency == "eth":
        return ETH_DECIMALS
    return (token_decimals or {}).get(currency, 0)
