"""The connection-request decisions of a simulated CPE, with exact statuses, headers and counts."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from itertools import count

import pytest

from knock.auth import Algorithm, DigestChallenge, DigestServer, parse_challenges
from knock.cpe.cr_http import (
    REALM,
    Busy,
    CrAnswer,
    CrDecision,
    CrGate,
    CrPolicy,
    CrRequest,
    DeviceFacts,
    default_digest,
)

NOW = 1_700_000_000.0
PATH = "/Xq3vT0cpePath"
NONCE_1 = "AAAAAGVT8QAAAAAAAAAAAAAAAAEY3BPzNhFETfC5dcMVyXH-"  # NOW, salt 1, secret s*32
NONCE_2 = "AAAAAGVT8QAAAAAAAAAAAAAAAAJLs2vtZf9PlcsgOThTVXhB"  # NOW, salt 2
DEVICE = DeviceFacts("SIM000001", "cpe", "s3cret", in_session=False, sessions_started=1)
GET = CrRequest("GET", PATH, None)


def gate(policy: CrPolicy | None = None) -> CrGate:
    salts = count(1)
    digest = DigestServer(
        REALM,
        algorithms=(Algorithm.SHA256, Algorithm.MD5, Algorithm.MD5_SESS),
        nonce_lifetime=60,
        secret=b"s" * 32,
        random_bytes=lambda n: next(salts).to_bytes(n, "big"),
    )
    return CrGate(policy, digest)


def challenges(decision: CrDecision) -> dict[Algorithm, DigestChallenge]:
    found = {}
    for name, value in decision.headers:
        assert name == "WWW-Authenticate"
        challenge = DigestChallenge.from_challenge(parse_challenges(value)[0])
        found[challenge.effective_algorithm] = challenge
    return found


def answer(
    decision: CrDecision,
    algorithm: Algorithm = Algorithm.MD5,
    *,
    user: str = "cpe",
    password: str = "s3cret",
    uri: str = PATH,
    nc: int = 1,
) -> CrRequest:
    """The GET that answers *decision*'s challenge for *algorithm*, as knock.auth's client does."""
    challenge = challenges(decision)[algorithm]
    authorization = challenge.authorization("GET", uri, user, password, cnonce="0a4f113b", nc=nc)
    return CrRequest("GET", PATH, authorization)


def authenticated(g: CrGate, device: DeviceFacts = DEVICE, now: float = NOW) -> CrDecision:
    return g.decide(answer(g.decide(GET, device, now)), device, now)


def test_no_credentials_is_challenged_with_every_algorithm_and_a_fresh_nonce() -> None:
    g = gate()
    first = g.decide(GET, DEVICE, NOW)
    assert first == CrDecision(
        CrAnswer.CHALLENGED,
        401,
        tuple(
            (
                "WWW-Authenticate",
                f'Digest realm="Knock CPE", algorithm={algorithm}, qop="auth", nonce="{NONCE_1}"',
            )
            for algorithm in ("SHA-256", "MD5", "MD5-sess")
        ),
    )
    assert first.keep_alive
    second = g.decide(GET, DEVICE, NOW)
    assert {value for _, value in second.headers} == {
        value.replace(NONCE_1, NONCE_2) for _, value in first.headers
    }


def test_md5_response_computed_by_hand_is_accepted() -> None:
    g = gate()
    g.decide(GET, DEVICE, NOW)

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5("cpe:Knock CPE:s3cret")
    ha2 = md5(f"GET:{PATH}")
    response = md5(f"{ha1}:{NONCE_1}:00000001:c0ffee:auth:{ha2}")
    authorization = (
        f'Digest username="cpe", realm="Knock CPE", nonce="{NONCE_1}", uri="{PATH}", '
        f'algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee", response="{response}"'
    )
    assert g.decide(CrRequest("GET", PATH, authorization), DEVICE, NOW) == CrDecision(
        CrAnswer.ACCEPTED, 200
    )


@pytest.mark.parametrize("algorithm", [Algorithm.MD5, Algorithm.MD5_SESS, Algorithm.SHA256])
def test_valid_digest_opens_a_session(algorithm: Algorithm) -> None:
    g = gate()
    decision = g.decide(answer(g.decide(GET, DEVICE, NOW), algorithm), DEVICE, NOW + 1)
    assert decision == CrDecision(CrAnswer.ACCEPTED, 200, ())
    assert decision.answer.opens_session
    assert not decision.keep_alive
    assert g.counts("SIM000001") == Counter({CrAnswer.CHALLENGED: 1, CrAnswer.ACCEPTED: 1})


@pytest.mark.parametrize(
    ("user", "password", "uri", "expected"),
    [
        ("cpe", "wrong", PATH, CrAnswer.BAD_CREDENTIALS),
        ("someone", "s3cret", PATH, CrAnswer.BAD_CREDENTIALS),
        ("cpe", "s3cret", "/another-device", CrAnswer.MALFORMED),
    ],
)
def test_wrong_credentials_are_refused_with_a_fresh_challenge_and_no_session(
    user: str, password: str, uri: str, expected: CrAnswer
) -> None:
    g = gate()
    request = answer(g.decide(GET, DEVICE, NOW), user=user, password=password, uri=uri)
    decision = g.decide(request, DEVICE, NOW)
    assert (decision.answer, decision.status) == (expected, 401)
    assert not decision.answer.opens_session
    assert [challenge.nonce for challenge in challenges(decision).values()] == [NONCE_2] * 3
    assert not any(challenge.stale for challenge in challenges(decision).values())


def test_garbage_authorization_is_malformed() -> None:
    decision = gate().decide(replace(GET, authorization="Digest ,,=="), DEVICE, NOW)
    assert (decision.answer, decision.status) == (CrAnswer.MALFORMED, 401)


def test_an_expired_nonce_is_answered_stale() -> None:
    g = gate()
    request = answer(g.decide(GET, DEVICE, NOW))
    decision = g.decide(request, DEVICE, NOW + 61)
    assert (decision.answer, decision.status) == (CrAnswer.STALE, 401)
    assert decision.headers[0][1].endswith(", stale=true")
    assert all(challenge.stale for challenge in challenges(decision).values())


def test_a_replayed_nonce_count_is_answered_stale() -> None:
    g = gate()
    request = answer(g.decide(GET, DEVICE, NOW))
    assert g.decide(request, DEVICE, NOW).answer is CrAnswer.ACCEPTED
    assert g.decide(request, replace(DEVICE, sessions_started=2), NOW + 5).answer is CrAnswer.STALE


def test_new_credentials_apply_at_once() -> None:
    g = gate()
    changed = replace(DEVICE, username="knock-1", password="fresh")
    old = g.decide(answer(g.decide(GET, changed, NOW)), changed, NOW)
    assert old.answer is CrAnswer.BAD_CREDENTIALS
    new = g.decide(answer(old, user="knock-1", password="fresh"), changed, NOW)
    assert new.answer is CrAnswer.ACCEPTED


def test_unknown_path_and_other_methods() -> None:
    g = gate()
    assert g.decide(GET, None, NOW) == CrDecision(CrAnswer.NOT_FOUND, 404)
    assert g.decide(CrRequest("POST", PATH, None), DEVICE, NOW) == CrDecision(
        CrAnswer.METHOD_NOT_ALLOWED, 405, (("Allow", "GET"),)
    )
    assert g.totals == Counter({CrAnswer.NOT_FOUND: 1, CrAnswer.METHOD_NOT_ALLOWED: 1})
    assert g.counts("SIM000001") == Counter({CrAnswer.METHOD_NOT_ALLOWED: 1})


def test_rate_limit_refuses_with_retry_after_until_it_passes() -> None:
    g = gate(CrPolicy(rate_limit=2.0))
    assert authenticated(g).answer is CrAnswer.ACCEPTED
    after = replace(DEVICE, sessions_started=2)  # the session it asked for has begun
    assert authenticated(g, after, NOW + 0.5) == CrDecision(
        CrAnswer.RATE_LIMITED, 503, (("Retry-After", "2"),)
    )
    assert authenticated(g, after, NOW + 1.9) == CrDecision(
        CrAnswer.RATE_LIMITED, 503, (("Retry-After", "1"),)
    )
    assert authenticated(g, after, NOW + 2.0).answer is CrAnswer.ACCEPTED
    assert g.counts("SIM000001")[CrAnswer.RATE_LIMITED] == 2


def test_rate_limit_zero_is_off() -> None:
    g = gate(CrPolicy(rate_limit=0))
    assert authenticated(g).answer is CrAnswer.ACCEPTED
    assert authenticated(g, replace(DEVICE, sessions_started=2)).answer is CrAnswer.ACCEPTED


def test_a_burst_before_the_session_opens_one_session() -> None:
    g = gate()
    decisions = [authenticated(g, DEVICE, NOW + n * 0.1) for n in range(4)]
    assert [d.answer for d in decisions] == [CrAnswer.ACCEPTED] + [CrAnswer.MERGED] * 3
    assert [d.status for d in decisions] == [200] * 4
    assert sum(d.answer.opens_session for d in decisions) == 1


def test_in_session_the_default_is_503_without_a_session() -> None:
    g = gate(CrPolicy(busy=Busy.REFUSE, rate_limit=0))
    assert authenticated(g, replace(DEVICE, in_session=True)) == CrDecision(CrAnswer.BUSY, 503)


def test_in_session_queue_accepts_one_session_after_the_current_one() -> None:
    g = gate(CrPolicy(busy=Busy.QUEUE, rate_limit=0))
    busy = replace(DEVICE, in_session=True)
    assert authenticated(g, busy).answer is CrAnswer.ACCEPTED
    assert authenticated(g, busy).answer is CrAnswer.MERGED  # same session still running
    ended = replace(DEVICE, sessions_started=2)  # the queued session began
    assert authenticated(g, ended).answer is CrAnswer.ACCEPTED


def test_refusals_and_totals_are_counted_per_device() -> None:
    g = gate(CrPolicy(rate_limit=0))
    other = replace(DEVICE, serial="SIM000002")
    authenticated(g)
    g.decide(answer(g.decide(GET, other, NOW), password="nope"), other, NOW)
    assert g.counts("SIM000001") == Counter({CrAnswer.CHALLENGED: 1, CrAnswer.ACCEPTED: 1})
    assert g.counts("SIM000002") == Counter({CrAnswer.CHALLENGED: 1, CrAnswer.BAD_CREDENTIALS: 1})
    assert g.counts("SIM000003") == Counter()
    assert g.totals == Counter(
        {CrAnswer.CHALLENGED: 2, CrAnswer.ACCEPTED: 1, CrAnswer.BAD_CREDENTIALS: 1}
    )
    assert [a for a in CrAnswer if a.refused] == [
        CrAnswer.MALFORMED,
        CrAnswer.BAD_CREDENTIALS,
        CrAnswer.STALE,
        CrAnswer.BUSY,
        CrAnswer.RATE_LIMITED,
        CrAnswer.NOT_FOUND,
        CrAnswer.METHOD_NOT_ALLOWED,
        CrAnswer.IGNORED,  # 200 but no session: a defective device's silent refusal
    ]


def test_default_digest_offers_md5_md5_sess_and_sha256() -> None:
    decision = CrGate(digest=default_digest()).decide(GET, DEVICE, NOW)
    assert list(challenges(decision)) == [Algorithm.SHA256, Algorithm.MD5, Algorithm.MD5_SESS]
