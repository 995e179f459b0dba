"""Password hashes of other systems, made here exactly as their own libraries format them
(passlib, Django, bcrypt), so that import and verification are tested against the real thing."""

from __future__ import annotations

import base64
import hashlib

import bcrypt

# A salt whose base64 holds '+' and '/', so passlib's '.' for '+' is exercised.
PASSLIB_SALT = b"\xfb\xef\xbe" * 5 + b"\xff"
DJANGO_SALT = "x2zNiIj4bPLQsQqVZBzXa9"


def ab64(data: bytes) -> str:
    """passlib's "adapted base64": standard alphabet with '.' for '+', no padding."""
    return base64.b64encode(data).decode().rstrip("=").replace("+", ".")


def passlib_pbkdf2(password: str, salt: bytes = PASSLIB_SALT, rounds: int = 1000) -> str:
    """passlib.hash.pbkdf2_sha256: `$pbkdf2-sha256$rounds$ab64(salt)$ab64(digest)`."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    return f"$pbkdf2-sha256${rounds}${ab64(salt)}${ab64(digest)}"


def django_pbkdf2(password: str, salt: str = DJANGO_SALT, rounds: int = 1000) -> str:
    """Django's PBKDF2PasswordHasher: `pbkdf2_sha256$iterations$salt$b64(digest)`, the salt
    used as text."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return f"pbkdf2_sha256${rounds}${salt}${base64.b64encode(digest).decode().strip()}"


def bcrypt_hash(password: str, prefix: str = "$2b$") -> str:
    """bcrypt at the lowest cost, with `prefix` as the version ($2a$, $2b$, $2y$)."""
    made = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return prefix + made[4:]
