"""Sans-IO HTTP authentication: Digest (RFC 7616, RFC 2617) and Basic (RFC 7617).

Strings in, strings and decisions out. Time arrives as ``now`` and randomness through
injectable callables, so the ACS, the simulated CPE and the checker share one implementation
whose every output a test can pin down byte for byte.
"""

from knock.auth.basic import (
    BasicChallenge,
    BasicCredentials,
    basic_authorization,
    basic_challenge,
    parse_basic,
)
from knock.auth.digest import (
    Algorithm,
    Decision,
    DigestChallenge,
    DigestCredentials,
    DigestServer,
    Lookup,
    NonceUse,
    Verdict,
    answer_challenge,
    claimed_username,
    new_cnonce,
    select_challenge,
)
from knock.auth.headers import AuthError, Challenge, parse_challenges, parse_credentials

__all__ = [
    "Algorithm",
    "AuthError",
    "BasicChallenge",
    "BasicCredentials",
    "Challenge",
    "Decision",
    "DigestChallenge",
    "DigestCredentials",
    "DigestServer",
    "Lookup",
    "NonceUse",
    "Verdict",
    "answer_challenge",
    "basic_authorization",
    "basic_challenge",
    "claimed_username",
    "new_cnonce",
    "parse_basic",
    "parse_challenges",
    "parse_credentials",
    "select_challenge",
]
