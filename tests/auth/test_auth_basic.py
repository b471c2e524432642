from __future__ import annotations

import pytest

from knock.auth import (
    Algorithm,
    AuthError,
    BasicChallenge,
    BasicCredentials,
    Decision,
    DigestServer,
    Verdict,
    basic_authorization,
    basic_challenge,
    parse_basic,
    parse_credentials,
    select_challenge,
)

ALADDIN = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_rfc7617_example() -> None:
    assert basic_authorization("Aladdin", "open sesame") == ALADDIN
    assert parse_basic(parse_credentials(ALADDIN).token68) == BasicCredentials(
        "Aladdin", "open sesame"
    )


def test_utf8_and_colons_in_the_password_survive() -> None:
    authorization = basic_authorization("tést", "a:b:ç")
    assert parse_basic(parse_credentials(authorization).token68) == BasicCredentials(
        "tést", "a:b:ç"
    )


@pytest.mark.parametrize(
    ("token68", "reason"),
    [
        (None, "without a token"),
        ("!!!", "not base64"),
        ("/w==", "not base64"),
        ("bm9jb2xvbg==", "without ':'"),
    ],
)
def test_bad_basic_tokens(token68: str | None, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        parse_basic(token68)


def test_a_username_with_a_colon_cannot_be_sent() -> None:
    with pytest.raises(AuthError, match="cannot contain ':'"):
        basic_authorization("a:b", "pw")


def test_the_password_stays_out_of_repr() -> None:
    assert "open sesame" not in repr(BasicCredentials("Aladdin", "open sesame"))


def test_server_accepts_basic_only_when_configured() -> None:
    def lookup(name: str) -> str | None:
        return {"Aladdin": "open sesame"}.get(name)

    strict = DigestServer("lab", algorithms=[Algorithm.MD5], secret=b"k")
    lenient = DigestServer("lab", algorithms=[Algorithm.MD5], secret=b"k", allow_basic=True)
    assert strict.challenge(0)[-1].startswith("Digest ")
    assert lenient.challenge(0)[-1] == basic_challenge("lab")
    assert basic_challenge("lab") == 'Basic realm="lab", charset="UTF-8"'

    def verify(server: DigestServer, authorization: str) -> Decision:
        return server.verify(authorization, method="GET", uri="/", lookup=lookup, now=0)

    assert verify(strict, ALADDIN).verdict is Verdict.MALFORMED
    assert verify(lenient, ALADDIN) == Decision(Verdict.OK, "Aladdin")
    wrong = basic_authorization("Aladdin", "close sesame")
    assert verify(lenient, wrong) == Decision(Verdict.BAD_CREDENTIALS, "Aladdin")
    stranger = basic_authorization("Jafar", "open sesame")
    assert verify(lenient, stranger) == Decision(Verdict.BAD_CREDENTIALS, "Jafar")
    assert verify(lenient, "Basic !!!").verdict is Verdict.MALFORMED


def test_client_answers_a_basic_challenge() -> None:
    challenge = select_challenge(basic_challenge("lab"), allow_basic=True)
    assert challenge == BasicChallenge("lab")
    assert isinstance(challenge, BasicChallenge)
    assert challenge.authorization("Aladdin", "open sesame") == ALADDIN
