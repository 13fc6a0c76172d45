"""The console's cookie and CSRF tokens: bound to this stack's secret key and admin token,
expiring, and useless once changed by a byte."""

from payhook.api.console.cookies import LIFETIME_SECONDS, Signer

SECRET, TOKEN = "s" * 40, "t" * 30


def test_a_cookie_verifies_here_until_it_expires():
    signer = Signer(SECRET, TOKEN)
    cookie, operator = signer.issue("Ada Lovelace", now=1_000)
    assert signer.verify(cookie, now=1_001) == operator
    assert operator.name == "Ada Lovelace" and operator.expires == 1_000 + LIFETIME_SECONDS
    assert signer.verify(cookie, now=1_000 + LIFETIME_SECONDS) is None


def test_another_stack_or_a_rotated_token_or_a_changed_byte_is_refused():
    cookie, _ = Signer(SECRET, TOKEN).issue("Ada", now=1_000)
    assert Signer("x" * 40, TOKEN).verify(cookie, now=1_001) is None
    assert Signer(SECRET, "u" * 30).verify(cookie, now=1_001) is None
    signer = Signer(SECRET, TOKEN)
    expires, nonce, name, mac = cookie.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for forged in (f"{int(expires) + 9999}.{nonce}.{name}.{mac}",
                   f"{expires}.{nonce}x.{name}.{mac}", f"{expires}.{nonce}.{name}.{flipped}",
                   f"{expires}.{nonce}.{name}", "", "é.é.é.é", "1" * 600):
        assert signer.verify(forged, now=1_001) is None, forged


def test_csrf_tokens_belong_to_one_nonce():
    signer = Signer(SECRET, TOKEN)
    assert signer.csrf_ok("n1", signer.csrf("n1"))
    assert not signer.csrf_ok("n2", signer.csrf("n1"))
    assert not signer.csrf_ok("n1", None) and not signer.csrf_ok("n1", "é")
    assert not Signer("x" * 40, TOKEN).csrf_ok("n1", signer.csrf("n1"))
