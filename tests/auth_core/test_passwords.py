"""Password hashing: our argon2id, the formats users are imported with (each built here the way
its own library formats it), the re-hash decision, and the length policy."""

from __future__ import annotations

from collections.abc import Callable

import bcrypt
import pytest

from auth_core.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    HashCost,
    PasswordPolicyError,
    Passwords,
    check_policy,
    importable,
)
from tests.auth_core.foreign_hashes import bcrypt_hash, django_pbkdf2, passlib_pbkdf2
from tests.support import FAST_HASHING

PASSWORDS = Passwords(FAST_HASHING)


def argon2_other(password: str) -> str:
    return Passwords(HashCost(time_cost=2, memory_kib=8192, parallelism=1)).hash(password)


FORMATS: list[tuple[str, Callable[[str], str], bool]] = [
    # (id, how the hash is made, whether needs_rehash says it should be replaced)
    ("argon2id-ours", PASSWORDS.hash, False),
    ("argon2id-other-parameters", argon2_other, True),
    ("bcrypt-2b", bcrypt_hash, True),
    ("bcrypt-2a", lambda p: bcrypt_hash(p, "$2a$"), True),
    ("bcrypt-2y", lambda p: bcrypt_hash(p, "$2y$"), True),
    ("passlib-pbkdf2-sha256", passlib_pbkdf2, True),
    ("passlib-pbkdf2-sha256-other-salt", lambda p: passlib_pbkdf2(p, b"\x00" * 16, 2000), True),
    ("django-pbkdf2-sha256", django_pbkdf2, True),
]
SECRETS = [
    pytest.param("correct horse battery staple", id="ascii"),
    pytest.param("pässwörd-ünïcødé-密码", id="unicode"),
]


@pytest.mark.parametrize("password", SECRETS)
@pytest.mark.parametrize(
    ("make", "rehash"), [pytest.param(m, r, id=name) for name, m, r in FORMATS]
)
def test_each_format_verifies_the_right_password_only(
    make: Callable[[str], str], rehash: bool, password: str
) -> None:
    stored = make(password)
    assert importable(stored) or stored.startswith("$argon2id$")
    assert PASSWORDS.verify(stored, password) is True
    assert PASSWORDS.verify(stored, password + "x") is False
    assert PASSWORDS.verify(stored, password[:-1]) is False
    assert PASSWORDS.verify(stored, password.upper()) is False
    assert PASSWORDS.needs_rehash(stored) is rehash


def test_argon2_hashes_are_argon2id_and_salted() -> None:
    first = PASSWORDS.hash("correct horse battery staple")
    second = PASSWORDS.hash("correct horse battery staple")
    assert first.startswith("$argon2id$")
    assert first != second


def test_argon2i_imports_verify_and_are_rehashed() -> None:
    from argon2 import PasswordHasher, Type

    stored = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.I).hash(
        "correct horse battery staple"
    )
    assert stored.startswith("$argon2i$")
    assert importable(stored)
    assert PASSWORDS.verify(stored, "correct horse battery staple") is True
    assert PASSWORDS.needs_rehash(stored) is True


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("", id="empty"),
        pytest.param("correct horse battery staple", id="plain-text"),
        pytest.param("md5$salt$5f4dcc3b5aa765d61d8327deb882cf99", id="django-md5"),
        pytest.param("$1$saltsalt$abcdefghijklmnopqrstuv", id="md5-crypt"),
        pytest.param("$6$saltsalt$" + "a" * 86, id="sha512-crypt"),
        pytest.param("{SSHA}abcdefgh", id="ldap-ssha"),
        pytest.param("$argon2id$garbage", id="argon2-malformed"),
        pytest.param("$2b$04$garbage", id="bcrypt-malformed"),
        pytest.param("$pbkdf2-sha256$many$c2FsdA$ZGlnZXN0", id="passlib-rounds-not-a-number"),
        pytest.param("$pbkdf2-sha256$1000$c2FsdA", id="passlib-missing-digest"),
        pytest.param("$pbkdf2-sha256$1000$!!!$???", id="passlib-not-base64"),
        pytest.param("pbkdf2_sha256$many$salt$ZGlnZXN0", id="django-rounds-not-a-number"),
        pytest.param("pbkdf2_sha256$1000$salt", id="django-missing-digest"),
        pytest.param("pbkdf2_sha256$1000$salt$!!!", id="django-not-base64"),
    ],
)
def test_unknown_or_malformed_hashes_are_refused_without_error(stored: str) -> None:
    assert PASSWORDS.verify(stored, "correct horse battery staple") is False
    assert PASSWORDS.verify(stored, stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("", id="empty"),
        pytest.param("md5$salt$5f4dcc3b5aa765d61d8327deb882cf99", id="django-md5"),
        pytest.param("pbkdf2_sha1$1000$salt$ZGlnZXN0", id="django-pbkdf2-sha1"),
        pytest.param("$pbkdf2$1000$c2FsdA$ZGlnZXN0", id="passlib-pbkdf2-sha1"),
        pytest.param("$argon2d$v=19$m=8,t=1,p=1$c2FsdA$ZGlnZXN0", id="argon2d"),
    ],
)
def test_unsupported_formats_are_not_importable(stored: str) -> None:
    assert importable(stored) is False


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("correct horse battery staple", id="ordinary"),
        pytest.param("not a password of anybody's", id="the-dummy-hash-text"),
        pytest.param("", id="empty"),
        pytest.param("a" * (MAX_LENGTH + 1), id="too-long"),
    ],
)
def test_no_stored_hash_never_verifies(password: str) -> None:
    # The dummy verification runs (so an unknown account costs the same) and says no.
    assert PASSWORDS.verify(None, password) is False


def test_bcrypt_refuses_passwords_beyond_72_bytes_instead_of_truncating() -> None:
    prefix = "p" * 72
    stored = bcrypt_hash(prefix)
    assert PASSWORDS.verify(stored, prefix) is True
    assert PASSWORDS.verify(stored, prefix + "x") is False
    assert PASSWORDS.verify(stored, prefix + "anything at all") is False
    # 72 bytes is counted in UTF-8: 36 two-byte characters fill it, one more overflows.
    wide = "é" * 36
    stored = bcrypt_hash(wide)
    assert PASSWORDS.verify(stored, wide) is True
    assert PASSWORDS.verify(stored, wide + "é") is False


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("p" * 72 + "x", id="its-prefix-is-the-password"),
        pytest.param("q" * 100, id="nothing-alike"),
        pytest.param("not the password", id="plain-wrong-password"),
    ],
)
def test_a_bcrypt_refusal_of_a_long_password_does_the_work_of_a_wrong_one(
    password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 72-byte refusal comes after a full bcrypt check (not before it, answering at once),
    like any wrong password: what bcrypt was asked to check is recorded here."""
    stored = bcrypt_hash("p" * 72)
    checked: list[tuple[bytes, bytes]] = []
    real = bcrypt.checkpw

    def recording(secret: bytes, hashed: bytes) -> bool:
        checked.append((secret, hashed))
        return real(secret, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", recording)
    assert PASSWORDS.verify(stored, password) is False
    assert len(checked) == 1
    secret, hashed = checked[0]
    assert hashed == stored.encode()
    assert 0 < len(secret) <= 72


def test_passwords_longer_than_max_length_never_verify() -> None:
    longest = "a" * MAX_LENGTH
    stored = PASSWORDS.hash(longest)
    assert PASSWORDS.verify(stored, longest) is True
    # Not cut to MAX_LENGTH and then compared: refused outright.
    assert PASSWORDS.verify(stored, longest + "a") is False


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        pytest.param("", False, id="empty"),
        pytest.param("a" * (MIN_LENGTH - 1), False, id="7-chars"),
        pytest.param("a" * MIN_LENGTH, True, id="8-chars"),
        pytest.param("é" * MIN_LENGTH, True, id="8-non-ascii-chars"),
        pytest.param("a" * MAX_LENGTH, True, id="1024-chars"),
        pytest.param("a" * (MAX_LENGTH + 1), False, id="1025-chars"),
    ],
)
def test_password_policy(password: str, accepted: bool) -> None:
    assert (MIN_LENGTH, MAX_LENGTH) == (8, 1024)
    if accepted:
        check_policy(password)
    else:
        with pytest.raises(PasswordPolicyError, match="characters"):
            check_policy(password)
