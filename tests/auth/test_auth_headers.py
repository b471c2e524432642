from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knock.auth import AuthError, Challenge, parse_challenges, parse_credentials
from knock.auth.headers import auth_param, quote


def test_rfc7235_example_with_two_challenges_and_escapes() -> None:
    value = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    newauth, basic = parse_challenges(value)
    assert newauth.scheme == "newauth"
    assert dict(newauth.params) == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert basic == Challenge("basic", {"realm": "simple"})


def test_whitespace_case_and_empty_list_elements_are_tolerated() -> None:
    (challenge,) = parse_challenges(' ,DIGEST \t Realm = "x y" ,, NONCE= abc/def ,\tQop=auth , ')
    assert challenge.scheme == "digest"
    assert dict(challenge.params) == {"realm": "x y", "nonce": "abc/def", "qop": "auth"}


def test_token68_and_bare_schemes() -> None:
    value = "Negotiate, Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== , Digest realm=r"
    negotiate, basic, digest = parse_challenges(value)
    assert negotiate == Challenge("negotiate")
    assert basic.token68 == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert basic.params == {}
    assert digest.params == {"realm": "r"}


def test_a_comma_inside_a_quoted_string_does_not_split() -> None:
    (challenge,) = parse_challenges('Digest qop="auth, auth-int", realm="a,b"')
    assert dict(challenge.params) == {"qop": "auth, auth-int", "realm": "a,b"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "no authentication scheme"),
        (" , ,", "no authentication scheme"),
        ('Digest realm="unterminated', "unterminated"),
        ('Digest realm="ends in backslash\\"', "unterminated"),
        ('Digest realm="a", realm="b"', "given twice"),
        ('Digest realm="a"\r\nX-Injected: 1', "control character"),
        ("Digest realm=\x00", "control character"),
        ("Digest realm=\udcff", "undecodable"),
        ('Digest realm="a" nonce="b"', "expected a comma"),
        ("Digest realm nonce", "expected '='"),
        ("Digest realm=, nonce=x", "expected a space"),
        ("Digest a=b, realm=", "no value for 'realm'"),
        ('Digest realm=""x', "expected a comma"),
        ("=x", "expected an authentication scheme"),
        ('Digest="x"', "expected a space"),
        ('Digest ="x"', "expected a parameter name"),
    ],
)
def test_malformed_headers_raise_auth_error(value: str, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        parse_challenges(value)


def test_credentials_hold_exactly_one_scheme() -> None:
    assert parse_credentials('Digest username="u"').params == {"username": "u"}
    with pytest.raises(AuthError, match="more than one"):
        parse_credentials('Digest username="u", Basic realm="x"')


def test_rendering_quotes_and_escapes() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert auth_param("algorithm", "SHA-256", quoted=False) == "algorithm=SHA-256"
    with pytest.raises(AuthError, match="not a token"):
        auth_param("qop", "auth, auth-int", quoted=False)
    with pytest.raises(AuthError, match="control character"):
        quote("line\r\nbreak")


_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,8}", fullmatch=True)
_VALUES = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30)


@given(st.dictionaries(_NAMES.map(str.lower), _VALUES, min_size=1, max_size=6))
def test_rendered_params_parse_back_unchanged(params: dict[str, str]) -> None:
    value = "Digest " + ", ".join(auth_param(name, text) for name, text in params.items())
    assert parse_credentials(value) == Challenge("digest", params)


_PIECES = st.sampled_from(
    ["Digest", "Basic", "realm", "nonce", "x", "abc==", " ", "\t", ",", "=", '"', "\\", "é"]
)
_HEADERISH = st.lists(_PIECES | st.text(max_size=3), max_size=25).map("".join)


@given(_HEADERISH | st.text())
def test_parser_raises_nothing_but_auth_error(value: str) -> None:
    try:
        challenges = parse_challenges(value)
    except AuthError:
        return
    assert challenges
    for challenge in challenges:
        assert challenge.scheme == challenge.scheme.lower()
        assert all(name == name.lower() for name in challenge.params)
