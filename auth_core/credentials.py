"""The format of API keys (`gwk_`), personal access tokens (`gwp_`) and service tokens
(`gws_`), docs/authentication.md.

A credential is its prefix, 32 random base62 characters (190 bits) and a 6-character base62
checksum (CRC32 of everything before it). The prefix makes leaked ones easy to scan for; the
checksum lets the gateway refuse a typo or a forgery without a database look-up. Only the
SHA-256 of a credential is ever stored.
"""

from __future__ import annotations

import secrets
import zlib

from auth_core.tokens import token_hash

API_KEY_PREFIX = "gwk_"
PAT_PREFIX = "gwp_"
SERVICE_TOKEN_PREFIX = "gws_"  # noqa: S105 - a prefix, not a secret
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62 = frozenset(_ALPHABET)
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
LENGTH = 4 + RANDOM_LENGTH + CHECKSUM_LENGTH
DISPLAY_PREFIX_LENGTH = 12  # `gwk_` and 8 characters: enough to recognise, useless to guess


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate(prefix: str) -> str:
    """A new credential with `prefix` (`gwk_`, `gwp_` or `gws_`)."""
    body = prefix + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + _checksum(body)


def well_formed(credential: str, prefix: str) -> bool:
    """Whether `credential` has the prefix, the length, the alphabet and a right checksum."""
    if len(credential) != LENGTH or not credential.startswith(prefix):
        return False
    rest = credential[4:]
    if not _BASE62.issuperset(rest):
        return False
    return secrets.compare_digest(_checksum(credential[:-CHECKSUM_LENGTH]), rest[-CHECKSUM_LENGTH:])


def credential_hash(credential: str) -> str:
    """What is stored instead of the credential: its SHA-256, hex (as for every token)."""
    return token_hash(credential)


def display_prefix(credential: str) -> str:
    """The start of a credential, stored and shown so that people can tell keys apart."""
    return credential[:DISPLAY_PREFIX_LENGTH]
