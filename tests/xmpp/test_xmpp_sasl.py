from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from knock.xmpp.accounts import MemoryAccounts
from knock.xmpp.jid import Jid, JidError, parse_jid
from knock.xmpp.sasl import (
    Challenge,
    Failure,
    NeedCredentials,
    PlainServer,
    SaslCondition,
    SaslError,
    ScramClient,
    ScramCredentials,
    ScramSha1Server,
    Success,
)
from knock.xmpp.saslprep import SaslprepError, saslprep

# RFC 5802 §5: user "user", password "pencil".
RFC_SALT = base64.b64decode("QSXCR+Q6sek8bf92")
RFC_CLIENT_FIRST = b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
RFC_SERVER_FIRST = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
RFC_CLIENT_FINAL = (
    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
)
RFC_SERVER_FINAL = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
RFC_CREDS = ScramCredentials.from_password("pencil", salt=RFC_SALT, iterations=4096)


def test_scram_server_reproduces_rfc5802_byte_for_byte() -> None:
    server = ScramSha1Server("3rfcNHYJY1ZVvWVs7j")
    assert server.start(RFC_CLIENT_FIRST) == NeedCredentials("user")
    assert server.credentials(RFC_CREDS) == Challenge(RFC_SERVER_FIRST)
    assert server.respond(RFC_CLIENT_FINAL) == Success("user", "", RFC_SERVER_FINAL)


def test_scram_client_reproduces_rfc5802_byte_for_byte() -> None:
    client = ScramClient("user", "pencil", nonce="fyko+d2lbbFgONRv9qkxdawL")
    assert client.first() == RFC_CLIENT_FIRST
    assert client.final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    client.verify(RFC_SERVER_FINAL)
    with pytest.raises(SaslError):
        client.verify(b"v=" + base64.b64encode(b"\0" * 20))


def _preparable(text: str) -> bool:
    try:
        return bool(saslprep(text))
    except SaslprepError:
        return False


def exchange(client: ScramClient, found: ScramCredentials | None) -> object:
    server = ScramSha1Server()
    assert isinstance(server.start(client.first()), NeedCredentials)
    challenge = server.credentials(found)
    assert isinstance(challenge, Challenge)
    return server.respond(client.final(challenge.data))


@given(
    st.text(st.characters(whitelist_categories=["L", "N", "P"]), min_size=1, max_size=12),
    st.text(st.characters(whitelist_categories=["L", "N"]), min_size=1, max_size=12),
)
@settings(max_examples=25, deadline=None)
def test_scram_round_trip_for_any_name_and_password(username: str, password: str) -> None:
    assume(_preparable(username) and _preparable(password))
    client = ScramClient(username, password)
    outcome = exchange(client, ScramCredentials.from_password(password, iterations=64))
    assert isinstance(outcome, Success) and outcome.username == saslprep(username)
    client.verify(outcome.data)


def test_scram_hashes_the_saslprepped_password() -> None:
    # RFC 4013: a soft hyphen maps to nothing, so "I\u00adX" and "IX" are the same password.
    creds = ScramCredentials.from_password("IX", iterations=64)
    assert isinstance(exchange(ScramClient("u", "I\u00adX"), creds), Success)


def test_scram_refuses_a_wrong_password() -> None:
    creds = ScramCredentials.from_password("right", iterations=64)
    assert exchange(ScramClient("u", "wrong"), creds) == Failure(SaslCondition.NOT_AUTHORIZED)


def test_an_unknown_user_fails_late_with_a_stable_salt() -> None:
    """The exchange looks the same as for a real user: the server-first message carries a salt
    that does not change between attempts, and the refusal comes only after the proof."""
    salts = []
    for _ in range(2):
        server = ScramSha1Server()
        server.start(b"n,,n=ghost,r=abc")
        challenge = server.credentials(None)
        assert isinstance(challenge, Challenge)
        salts.append(dict(p.split("=", 1) for p in challenge.data.decode().split(","))["s"])
    assert salts[0] == salts[1]
    assert exchange(ScramClient("ghost", "x"), None) == Failure(SaslCondition.NOT_AUTHORIZED)


def test_names_with_commas_and_equals_travel_escaped() -> None:
    client = ScramClient("a,b=c", "pw")
    assert b"n=a=2Cb=3Dc," in client.first()
    outcome = exchange(client, ScramCredentials.from_password("pw", iterations=64))
    assert isinstance(outcome, Success) and outcome.username == "a,b=c"


def test_authzid_is_reported() -> None:
    server = ScramSha1Server()
    assert server.start(b"n,a=dev@knock.test,n=dev,r=abc") == NeedCredentials("dev")


@pytest.mark.parametrize(
    "client_first",
    [
        b"p=tls-unique,,n=user,r=abc",  # channel binding, never offered
        b"n,,m=ext,n=user,r=abc",  # an unknown mandatory extension
        b"n,,n=user",  # no nonce
        b"n,,r=abc,n=user",  # wrong order
        b"n,,n=us=2Xer,r=abc",  # a bad escape
        b"n,x,n=user,r=abc",  # a bad authzid field
        b"n,,n=user,r=abc\xff",  # not UTF-8
        b"n,,n=\x07,r=abc",  # SASLprep prohibits control characters
        b"",
    ],
)
def test_malformed_client_first_messages(client_first: bytes) -> None:
    step = ScramSha1Server().start(client_first)
    assert isinstance(step, Failure) and step.condition is SaslCondition.MALFORMED_REQUEST


@pytest.mark.parametrize(
    "client_final",
    [
        b"c=eSws,r=abcSERVER,p=AAAA",  # c= says "y,," but the client sent "n,,"
        b"c=biws,r=abcOTHER,p=AAAA",  # not the combined nonce
        b"c=biws,r=abcSERVER",  # no proof
        b"c=biws,r=abcSERVER,p=!!!!",  # proof not base64
    ],
)
def test_malformed_client_final_messages(client_final: bytes) -> None:
    server = ScramSha1Server("SERVER")
    server.start(b"n,,n=user,r=abc")
    server.credentials(RFC_CREDS)
    step = server.respond(client_final)
    assert isinstance(step, Failure) and step.condition is SaslCondition.MALFORMED_REQUEST


def test_a_short_proof_is_refused() -> None:
    server = ScramSha1Server("SERVER")
    server.start(b"n,,n=user,r=abc")
    server.credentials(RFC_CREDS)
    assert server.respond(b"c=biws,r=abcSERVER,p=AAAA") == Failure(SaslCondition.NOT_AUTHORIZED)


def test_messages_out_of_order_are_refused() -> None:
    server = ScramSha1Server()
    assert server.credentials(RFC_CREDS) == Failure(
        SaslCondition.MALFORMED_REQUEST, "message out of order"
    )
    assert server.start(None) == Challenge(b"")  # no initial response: an empty challenge
    assert server.respond(RFC_CLIENT_FIRST) == NeedCredentials("user")
    assert isinstance(server.respond(b"c=biws"), Failure)  # before the lookup answered


def test_scram_client_checks_the_server_nonce() -> None:
    client = ScramClient("user", "pencil", nonce="abc")
    with pytest.raises(SaslError):
        client.final(b"r=xyz,s=QSXCR+Q6sek8bf92,i=4096")
    with pytest.raises(SaslError):
        client.final(b"r=abc,s=QSXCR+Q6sek8bf92,i=4096")
    with pytest.raises(SaslError):
        client.final(b"r=abcdef,i=4096")


def test_plain_checks_the_password_against_scram_credentials() -> None:
    creds = ScramCredentials.from_password("pencil", iterations=64)
    plain = PlainServer()
    assert plain.start(b"\0user\0pencil") == NeedCredentials("user")
    assert plain.credentials(creds) == Success("user", "")
    wrong = PlainServer()
    wrong.start(b"admin\0user\0nope")
    assert wrong.credentials(creds) == Failure(SaslCondition.NOT_AUTHORIZED)
    unknown = PlainServer()
    unknown.start(b"\0ghost\0pencil")
    assert unknown.credentials(None) == Failure(SaslCondition.NOT_AUTHORIZED)
    assert PlainServer().start(None) == Challenge(b"")


@pytest.mark.parametrize("message", [b"user\0pencil", b"\0\0pencil", b"\0us\xffer\0pw"])
def test_malformed_plain(message: bytes) -> None:
    step = PlainServer().start(message)
    assert isinstance(step, Failure) and step.condition is SaslCondition.MALFORMED_REQUEST


def test_credentials_hide_their_keys() -> None:
    assert "stored_key" not in repr(RFC_CREDS) and "server_key" not in repr(RFC_CREDS)
    assert RFC_CREDS.matches("pencil") and not RFC_CREDS.matches("pencil ")


@pytest.mark.parametrize(
    ("given_", "prepared"),
    [("I\u00adX", "IX"), ("user", "user"), ("USER", "USER"), ("\u00aa", "a"), ("\u2168", "IX")],
)
def test_saslprep_rfc4013_examples(given_: str, prepared: str) -> None:
    assert saslprep(given_) == prepared


@pytest.mark.parametrize("bad", ["\u0007", "\u0627\u0031", "a\u200eb\u0627"])
def test_saslprep_rfc4013_prohibitions(bad: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(bad)


def test_saslprep_maps_spaces_and_refuses_unassigned_only_when_stored() -> None:
    assert saslprep("a\u00a0b") == "a b"
    assert saslprep("\u0221") == "\u0221"  # unassigned in Unicode 3.2, which stringprep uses
    with pytest.raises(SaslprepError):
        saslprep("\u0221", stored=True)


def test_jids_parse_and_normalize() -> None:
    assert parse_jid("CPE-0001@XMPP.Example./cwmp") == Jid("cpe-0001", "xmpp.example", "cwmp")
    assert str(parse_jid("a@b/c/d")) == "a@b/c/d"
    assert parse_jid("xmpp.example") == Jid("", "xmpp.example")
    assert parse_jid("a@b/R").bare == Jid("a", "b") and not parse_jid("a@b").is_full
    assert parse_jid("a@b/R") != parse_jid("a@b/r")  # resources are case-sensitive


@pytest.mark.parametrize(
    "bad", ["@b", "a@", "a@b/", "a b@c", "a@b c", "a@b/x\x00", 'a"@b', "x" * 1024 + "@b", ""]
)
def test_malformed_jids(bad: str) -> None:
    with pytest.raises(JidError):
        parse_jid(bad)


def test_memory_accounts_keep_credentials_by_jid_localpart() -> None:
    accounts = MemoryAccounts(iterations=64)
    accounts.add("CPE-1", "pw")
    found = accounts("cpe-1")
    assert found is not None and found.iterations == 64 and found.matches("pw")
    assert accounts("CPE-1") is None  # the server asks in normalized form
    accounts.set("acs", RFC_CREDS)
    assert accounts("acs") is RFC_CREDS
    accounts.remove("Cpe-1")
    assert accounts("cpe-1") is None
    with pytest.raises(JidError):
        accounts.add("a@b", "pw")
