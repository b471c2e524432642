from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knock.auth import (
    Algorithm,
    AuthError,
    BasicChallenge,
    Decision,
    DigestChallenge,
    DigestServer,
    Verdict,
    claimed_username,
    new_cnonce,
    select_challenge,
)
from knock.auth.headers import parse_credentials

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_CHALLENGES = [
    f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    for algorithm in ("SHA-256", "MD5")
]
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
SECRET = b"s" * 32
NOW = 1_700_000_000.0
URI = "/cwmp"


def zeros(n: int) -> bytes:
    return bytes(n)


def counter() -> Callable[[int], bytes]:
    state = {"n": 0}

    def random_bytes(n: int) -> bytes:
        state["n"] += 1
        return state["n"].to_bytes(n, "big")

    return random_bytes


def users(name: str) -> str | None:
    return {"cpe": "secret", "Mufasa": "Circle Of Life"}.get(name)


def server(**overrides: Any) -> DigestServer:
    defaults: dict[str, Any] = {
        "realm": "knock",
        "secret": SECRET,
        "random_bytes": counter(),
        "algorithms": list(Algorithm),
    }
    return DigestServer(**(defaults | overrides))


def answer(
    srv: DigestServer,
    *,
    now: float = NOW,
    password: str = "secret",
    uri: str = URI,
    nc: int = 1,
    method: str = "POST",
) -> str:
    challenge = select_challenge(srv.challenge(now))
    assert isinstance(challenge, DigestChallenge)
    return challenge.authorization(method, uri, "cpe", password, cnonce="c0ffee", nc=nc)


def verify(srv: DigestServer, authorization: str | None, *, now: float = NOW + 1) -> Decision:
    return srv.verify(authorization, method="POST", uri=URI, lookup=users, now=now)


# --- published vectors ------------------------------------------------------------------------


def test_rfc2617_example_byte_for_byte() -> None:
    challenge = select_challenge(RFC2617_CHALLENGE)
    assert isinstance(challenge, DigestChallenge)
    authorization = challenge.authorization(
        "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b"
    )
    assert authorization == RFC2617_AUTHORIZATION


def rfc7616_authorization(algorithm: str, response: str) -> str:
    """RFC 7616 §3.9.1's Authorization header for *algorithm*, as the RFC prints it (folded
    lines joined), parameters in the RFC's order."""
    return (
        'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        f'nc=00000001, cnonce="{RFC7616_CNONCE}", qop=auth, response="{response}", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )


def knock_order(algorithm: str, response: str) -> str:
    """The same parameters in the order Knock writes every Digest answer (RFC 2617's example
    order, pinned byte for byte above): order carries no meaning in an auth-param list."""
    return (
        'Digest username="Mufasa", realm="http-auth@example.org", '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", uri="/dir/index.html", '
        f'algorithm={algorithm}, qop=auth, nc=00000001, cnonce="{RFC7616_CNONCE}", '
        f'response="{response}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )


@pytest.mark.parametrize(
    ("challenge", "algorithm", "response"),
    [
        (
            RFC7616_CHALLENGES[0],
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
        (RFC7616_CHALLENGES[1], "MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_examples_byte_for_byte(challenge: str, algorithm: str, response: str) -> None:
    chosen = select_challenge(challenge)
    assert isinstance(chosen, DigestChallenge)
    authorization = chosen.authorization(
        "GET", "/dir/index.html", "Mufasa", "Circle of Life", cnonce=RFC7616_CNONCE
    )
    assert authorization == knock_order(algorithm, response)
    # The same header as the RFC's, parameter for parameter, nothing added or left out.
    rfc = parse_credentials(rfc7616_authorization(algorithm, response))
    assert parse_credentials(authorization) == rfc
    assert len(rfc.params) == 10


@pytest.mark.parametrize("order", [1, -1])
def test_client_prefers_sha256_whatever_the_order(order: int) -> None:
    chosen = select_challenge(RFC7616_CHALLENGES[::order])
    assert isinstance(chosen, DigestChallenge)
    assert chosen.algorithm is Algorithm.SHA256


def test_rfc2069_server_gets_a_response_without_qop() -> None:
    challenge = select_challenge('digest REALM="r", nonce="n"')
    assert challenge == DigestChallenge(realm="r", nonce="n")
    authorization = challenge.authorization("GET", "/x", "u", "p", cnonce="ignored")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    response = md5(f"{md5('u:r:p')}:n:{md5('GET:/x')}")
    assert authorization == (
        f'Digest username="u", realm="r", nonce="n", uri="/x", response="{response}"'
    )


def test_a_valid_digest_on_a_foreign_nonce_is_stale_not_bad() -> None:
    # The RFC's nonce was not minted by us, yet its response proves the password.
    srv = server(realm="testrealm@host.com", opaque="5ccc069c403ebaf9f0171e9517f40e41")
    decision = srv.verify(
        RFC2617_AUTHORIZATION, method="GET", uri="/dir/index.html", lookup=users, now=NOW
    )
    assert decision == Decision(Verdict.STALE, "Mufasa", "nonce not issued here")
    wrong = srv.verify(
        RFC2617_AUTHORIZATION, method="GET", uri="/dir/index.html", lookup=lambda _: "x", now=NOW
    )
    assert wrong == Decision(Verdict.BAD_CREDENTIALS, "Mufasa")


# --- server challenges ------------------------------------------------------------------------


def test_challenges_are_byte_exact_and_strongest_first() -> None:
    srv = server(
        algorithms=[Algorithm.MD5, Algorithm.SHA256], random_bytes=zeros, opaque="op", realm="R"
    )
    nonce = "AAAAAGVT8QAAAAAAAAAAAAAAAAAvxodQBhndFXA46OAgFFbz"
    rest = f'qop="auth", nonce="{nonce}", opaque="op", stale=true'
    assert srv.challenge(NOW, stale=True) == [
        f'Digest realm="R", algorithm=SHA-256, {rest}',
        f'Digest realm="R", algorithm=MD5, {rest}',
    ]


def test_a_server_needs_an_algorithm() -> None:
    with pytest.raises(ValueError, match="at least one algorithm"):
        server(algorithms=[])


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_round_trip_for_every_algorithm(algorithm: Algorithm) -> None:
    srv = server(algorithms=[algorithm])
    challenge = select_challenge(srv.challenge(NOW))
    assert isinstance(challenge, DigestChallenge)
    assert challenge.algorithm is algorithm
    for nc in (1, 2, 3):
        authorization = challenge.authorization("POST", URI, "cpe", "secret", cnonce="c", nc=nc)
        assert verify(srv, authorization) == Decision(Verdict.OK, "cpe")


def test_wrong_password_unknown_user_and_wrong_method_are_bad_credentials() -> None:
    srv = server()
    assert verify(srv, answer(srv, password="guess")) == Decision(Verdict.BAD_CREDENTIALS, "cpe")
    assert verify(srv, answer(srv, method="GET")) == Decision(Verdict.BAD_CREDENTIALS, "cpe")
    stranger = answer(srv).replace('username="cpe"', 'username="eve"')
    assert verify(srv, stranger) == Decision(Verdict.BAD_CREDENTIALS, "eve")


def test_response_hex_is_compared_case_insensitively() -> None:
    srv = server(algorithms=[Algorithm.MD5])
    authorization = answer(srv)
    head, response, tail = authorization.partition('response="')
    upper = head + response + tail[:32].upper() + tail[32:]
    assert verify(srv, upper).ok


def test_wrong_uri_is_malformed() -> None:
    srv = server()
    decision = verify(srv, answer(srv, uri="/elsewhere"))
    assert decision.verdict is Verdict.MALFORMED
    assert "is not the request's" in decision.reason


def test_an_absolute_uri_naming_the_same_path_is_accepted() -> None:
    srv = server()
    assert verify(srv, answer(srv, uri=f"http://acs.example:7547{URI}")).ok


def test_an_unparseable_absolute_uri_is_compared_as_is() -> None:
    srv = server()
    authorization = answer(srv, uri="http://[::1/cwmp")
    decision = srv.verify(authorization, method="POST", uri="/cwmp", lookup=users, now=NOW)
    assert decision.verdict is Verdict.MALFORMED


def test_expired_nonce_is_stale_and_the_stale_challenge_lets_the_client_retry() -> None:
    srv = server(nonce_lifetime=60)
    late = NOW + 61
    assert verify(srv, answer(srv), now=late) == Decision(Verdict.STALE, "cpe", "nonce expired")
    retry = select_challenge(srv.challenge(late, stale=True))
    assert isinstance(retry, DigestChallenge)
    assert retry.stale
    authorization = retry.authorization("POST", URI, "cpe", "secret", cnonce="c")
    assert verify(srv, authorization, now=late).ok


def test_a_tampered_nonce_is_not_accepted() -> None:
    srv = server(algorithms=[Algorithm.MD5])
    challenge = select_challenge(srv.challenge(NOW))
    assert isinstance(challenge, DigestChallenge)
    nonce = challenge.nonce
    tampered = nonce[:20] + ("B" if nonce[20] == "A" else "A") + nonce[21:]
    forged = DigestChallenge(challenge.realm, tampered, challenge.algorithm, challenge.qop)
    authorization = forged.authorization("POST", URI, "cpe", "secret", cnonce="c")
    assert verify(srv, authorization) == Decision(Verdict.STALE, "cpe", "nonce not issued here")
    other = server(secret=b"another secret")
    assert verify(other, answer(srv)).verdict is Verdict.STALE


def test_replayed_and_decreasing_nonce_counts_are_refused() -> None:
    srv = server()
    challenge = select_challenge(srv.challenge(NOW))
    assert isinstance(challenge, DigestChallenge)

    def send(nc: int) -> Decision:
        return verify(srv, challenge.authorization("POST", URI, "cpe", "secret", cnonce="c", nc=nc))

    assert send(1).ok
    replayed = Decision(Verdict.STALE, "cpe", "nonce count replayed")
    assert send(1) == replayed
    assert send(5).ok
    assert send(4) == replayed
    assert send(6).ok


def test_nonce_count_zero_is_refused() -> None:
    srv = server()
    zero = answer(srv).replace("nc=00000001", "nc=00000000")
    assert verify(srv, zero).verdict is Verdict.BAD_CREDENTIALS
    challenge = select_challenge(srv.challenge(NOW))
    assert isinstance(challenge, DigestChallenge)
    with pytest.raises(ValueError, match="out of range"):
        challenge.authorization("POST", URI, "cpe", "secret", cnonce="c", nc=0)


def test_a_failed_forgery_does_not_burn_the_genuine_clients_counts() -> None:
    srv = server()
    challenge = select_challenge(srv.challenge(NOW))
    assert isinstance(challenge, DigestChallenge)
    forged = challenge.authorization("POST", URI, "cpe", "guess", cnonce="c", nc=0xFFFFFFFF)
    assert verify(srv, forged).verdict is Verdict.BAD_CREDENTIALS
    assert verify(srv, challenge.authorization("POST", URI, "cpe", "secret", cnonce="c")).ok


def test_a_server_sharing_its_counts_leaves_them_to_the_caller() -> None:
    """count_nonces=False: the decision names the count used, for a table all processes share;
    the server itself does not refuse a replay."""
    srv = server(count_nonces=False)
    authorization = answer(srv, nc=3)
    first, again = verify(srv, authorization), verify(srv, authorization)
    assert first == again
    assert first.ok and first.nonce_use is not None
    assert (first.nonce_use.issued, first.nonce_use.nc) == (int(NOW), 3)
    assert first.nonce_use.nonce in authorization
    assert verify(server(), authorization).nonce_use is None  # a counting server's decision


def test_replay_is_still_refused_after_the_nonce_left_the_bounded_table() -> None:
    srv = server(max_tracked_nonces=2)
    first = answer(srv, now=NOW)
    assert verify(srv, first, now=NOW + 1).ok
    assert verify(srv, answer(srv, now=NOW + 1), now=NOW + 2).ok
    assert verify(srv, answer(srv, now=NOW + 2), now=NOW + 3).ok
    assert verify(srv, first, now=NOW + 4).verdict is Verdict.STALE
    assert verify(srv, answer(srv, now=NOW + 4), now=NOW + 5).ok


# --- malformed and missing --------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "", "  \t "])
def test_no_credentials_are_missing(authorization: str | None) -> None:
    assert verify(server(), authorization) == Decision(Verdict.MISSING)


def drop(authorization: str, name: str) -> str:
    return ", ".join(p for p in authorization.split(", ") if not p.startswith(f"{name}="))


def test_missing_fields_are_malformed() -> None:
    srv = server(opaque="op")
    good = answer(srv)
    for name in ("username", "realm", "nonce", "uri", "response", "nc", "cnonce"):
        decision = verify(srv, drop(good.replace("Digest ", "Digest x=1, "), name))
        assert decision.verdict is Verdict.MALFORMED, name
        assert name in decision.reason
    assert verify(srv, drop(good, "opaque")).reason == "opaque not echoed"
    assert "qop None" in verify(srv, drop(drop(drop(good, "qop"), "nc"), "cnonce")).reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("algorithm=SHA-256", "algorithm=SHA-512-256"), "unsupported algorithm"),
        (('realm="knock"', 'realm="other"'), "realm 'other'"),
        (("qop=auth", "qop=auth-int"), "qop 'auth-int'"),
        (("nc=00000001", "nc=1"), "8 hex digits"),
        (("Digest ", "Bearer "), "scheme 'bearer' not accepted"),
        (('username="cpe"', 'username="cpe", username="cpe"'), "given twice"),
    ],
)
def test_wrong_fields_are_malformed(change: tuple[str, str], reason: str) -> None:
    srv = server()
    decision = verify(srv, answer(srv).replace(*change))
    assert decision.verdict is Verdict.MALFORMED
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ('Digest username="cpe', "unterminated"),
        ("Digest", "missing username, realm, nonce, uri, response"),
        ("Digest username=cpe", "missing realm"),
        ("garbage!! (*)", "expected a parameter name"),
        ('"quoted"', "expected an authentication scheme"),
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "scheme 'basic' not accepted"),
    ],
)
def test_garbage_is_malformed(authorization: str, reason: str) -> None:
    decision = verify(server(), authorization)
    assert decision.verdict is Verdict.MALFORMED
    assert reason in decision.reason


def test_an_algorithm_not_offered_is_malformed() -> None:
    md5_only = server(algorithms=[Algorithm.MD5])
    sha_only = server(algorithms=[Algorithm.SHA256])
    decision = verify(sha_only, answer(md5_only))
    assert decision == Decision(Verdict.MALFORMED, reason="algorithm MD5 not offered")


@given(st.text() | st.sampled_from(["Digest", "Digest ,", "Basic", "Basic !", "Digest a=b"]))
def test_verify_never_raises(authorization: str) -> None:
    decision = server(allow_basic=True).verify(
        authorization, method="GET", uri="/", lookup=users, now=NOW
    )
    assert decision.verdict is not Verdict.OK


# --- client choice ----------------------------------------------------------------------------


def test_fresh_cnonces_differ() -> None:
    assert len({new_cnonce() for _ in range(8)}) == 8


def test_client_skips_unusable_digest_challenges() -> None:
    chosen = select_challenge(
        [
            'Digest realm="r", nonce="n", algorithm=SHA-512-256, qop="auth"',
            'Digest realm="r", nonce="n", qop="auth-int"',
            'Digest realm="r", nonce="n", algorithm=MD5-sess',
            'Digest realm="r"',
            'Digest realm="r", nonce="n", algorithm=md5-SESS, qop="auth", stale=TRUE',
        ]
    )
    assert chosen == DigestChallenge("r", "n", Algorithm.MD5_SESS, "auth", None, stale=True)


def test_client_with_nothing_usable_says_why() -> None:
    with pytest.raises(AuthError, match=r"no usable challenge; unterminated.*not auth"):
        select_challenge(['Digest realm="', 'Digest realm="r", nonce="n", qop="auth-int"'])


def test_basic_only_when_the_caller_allows_it_and_never_over_digest() -> None:
    basic_only = 'Basic realm="lab"'
    with pytest.raises(AuthError, match="no usable challenge"):
        select_challenge(basic_only)
    assert select_challenge(basic_only, allow_basic=True) == BasicChallenge("lab")
    both = f'{basic_only}, Digest realm="lab", nonce="n", qop="auth"'
    assert isinstance(select_challenge(both, allow_basic=True), DigestChallenge)


def test_claimed_username() -> None:
    assert claimed_username(RFC2617_AUTHORIZATION) == "Mufasa"
    assert claimed_username("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == "Aladdin"
    assert claimed_username("Bearer abc") is None
    assert claimed_username('Digest username="') is None
    assert claimed_username(None) is None
