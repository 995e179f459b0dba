"""Password hashing: argon2id for everything stored, and the foreign formats users are
imported with (bcrypt, passlib's and Django's pbkdf2-sha256, argon2), verified and then
re-hashed on the next successful login.

Hashing is slow on purpose (tens of milliseconds); callers run it off the event loop
(`asyncio.to_thread`), argon2-cffi and bcrypt release the GIL while they work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # characters: no truncation, but a bound on the work a request can cause


class PasswordPolicyError(ValueError):
    """A password that cannot be accepted; the message says why."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class HashCost:
    """argon2id parameters (RFC 9106's second recommendation by default)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


class Passwords:
    """Hash new passwords with argon2id; verify ours and imported ones."""

    def __init__(self, cost: HashCost | None = None) -> None:
        cost = cost or HashCost()
        self._argon2 = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )
        # Verified against when there is no user, so that answers take the same time.
        self.dummy_hash = self._argon2.hash("not a password of anybody's")

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; with no stored hash the work is done anyway."""
        if len(password) > MAX_LENGTH:
            password = password[:MAX_LENGTH]  # still do the work; the answer will be "no"
            stored = None
        if stored is None:
            self._verify_argon2(self.dummy_hash, password + "\0")
            return False
        if stored.startswith("$argon2"):
            return self._verify_argon2(stored, password)
        if stored.startswith(("$2a$", "$2b$", "$2y$")):
            return _verify_bcrypt(stored, password)
        if stored.startswith("$pbkdf2-sha256$"):
            return _verify_passlib_pbkdf2(stored, password)
        if stored.startswith("pbkdf2_sha256$"):
            return _verify_django_pbkdf2(stored, password)
        self._verify_argon2(self.dummy_hash, password + "\0")
        return False

    def needs_rehash(self, stored: str) -> bool:
        """True for imported formats and argon2 hashes made with other parameters."""
        if not stored.startswith("$argon2id$"):
            return True
        return self._argon2.check_needs_rehash(stored)

    def _verify_argon2(self, stored: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def importable(stored: str) -> bool:
    """Whether `stored` is a hash format `gateway users import` accepts."""
    return stored.startswith(
        ("$argon2id$", "$argon2i$", "$2a$", "$2b$", "$2y$", "$pbkdf2-sha256$", "pbkdf2_sha256$")
    )


def _verify_bcrypt(stored: str, password: str) -> bool:
    secret = password.encode()
    # bcrypt reads 72 bytes and ignores the rest: a longer password cannot be told from its
    # prefix, so it is refused rather than silently truncated; but only after the same check
    # as any other password, so the refusal takes the time a wrong password takes.
    too_long = len(secret) > 72
    try:
        matches = bcrypt.checkpw(secret[:72], stored.encode())
    except ValueError:
        return False
    return matches and not too_long


def _ab64_decode(text: str) -> bytes:
    # passlib's "adapted base64": '.' instead of '+', no padding.
    padded = text.replace(".", "+") + "=" * (-len(text) % 4)
    return base64.b64decode(padded)


def _verify_passlib_pbkdf2(stored: str, password: str) -> bool:
    try:
        _, _, rounds, salt, digest = stored.split("$")
        expected = _ab64_decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), _ab64_decode(salt), int(rounds), dklen=len(expected)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


def _verify_django_pbkdf2(stored: str, password: str) -> bool:
    try:
        _, iterations, salt, digest = stored.split("$", 3)
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), salt.encode(), int(iterations), dklen=len(expected)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)
