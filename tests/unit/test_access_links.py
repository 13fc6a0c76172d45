"""The access-link signer alone: claims, expiry, and what verify refuses."""

import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from payhook import clock
from payhook.crypto import derive_key
from payhook.services.access import AccessLinks, InvalidLink

SECRET = "unit-secret-key-0123456789abcdef0123456789"
LINKS = AccessLinks(SECRET, "https://pay.example", days=7)
KEY = derive_key(SECRET, "access-links")


def token_of(url: str) -> str:
    return url.split("?token=", 1)[1]


def test_a_link_names_its_session_and_expires_with_its_token():
    now = datetime(2030, 1, 1, 12, 0, 30, 500_000, tzinfo=UTC)
    link = LINKS.issue("cs_abc", now)
    assert link.url.startswith("https://pay.example/access/cs_abc?token=")
    claims = jwt.decode(token_of(link.url), KEY, algorithms=["HS256"], audience="payhook:access",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iat"] == int(now.timestamp())
    assert link.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert link.expires_at - now < timedelta(days=7)  # whole seconds, never later than 7 days
    assert LINKS.issue("cs_abc", now).url != link.url  # a fresh jti each time


def test_verify_accepts_the_link_for_its_session_only():
    token = token_of(LINKS.issue("cs_abc", clock.now()).url)
    assert LINKS.verify("cs_abc", token)["sub"] == "cs_abc"
    for session_id in ("cs_other", "CS_ABC", "cs_abc ", ""):
        with pytest.raises(InvalidLink):
            LINKS.verify(session_id, token)


def test_verify_refuses_an_expired_link():
    token = token_of(LINKS.issue("cs_abc", clock.now() - timedelta(days=8)).url)
    with pytest.raises(InvalidLink):
        LINKS.verify("cs_abc", token)


def test_verify_refuses_another_algorithm_even_with_the_right_key():
    claims = jwt.decode(token_of(LINKS.issue("cs_abc", clock.now()).url), KEY,
                        algorithms=["HS256"], audience="payhook:access")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        forged = jwt.encode(claims, KEY, "HS512")
        # Well formed: a verifier that let the token choose its algorithm would accept it.
        assert jwt.decode(forged, KEY, algorithms=["HS512"], audience="payhook:access")
    with pytest.raises(InvalidLink):
        LINKS.verify("cs_abc", forged)


def test_a_link_from_another_secret_or_base_is_refused_or_kept():
    token = token_of(AccessLinks("another-secret-0123456789abcdef012345", "https://pay.example",
                                 7).issue("cs_abc", clock.now()).url)
    with pytest.raises(InvalidLink):
        LINKS.verify("cs_abc", token)
    moved = AccessLinks(SECRET, "https://new.example", 7)
    assert moved.verify("cs_abc", token_of(LINKS.issue("cs_abc", clock.now()).url))
