"""Currencies and amount ranges (API.md, Conventions)."""

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
