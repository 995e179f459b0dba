"""Django's own hashers with cheaper parameters, as Django's documentation advises for tests.
The hashes are the same formats (`pbkdf2_sha256$<iterations>$...`, `argon2$argon2id$...`); the
parameters are in each hash, and the gateway reads them from there."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher, PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 8192
    parallelism = 1
