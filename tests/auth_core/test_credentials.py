"""The format of API keys and personal access tokens (docs/authentication.md): `gwk_` / `gwp_`, 32
random base62 characters and a 6-character checksum, so that a typo or a forgery is refused
without a database look-up; only a SHA-256 of a credential is stored."""

from __future__ import annotations

import hashlib
import re
import string
import zlib

import pytest

from auth_core import credentials
from auth_core.credentials import (
    API_KEY_PREFIX,
    PAT_PREFIX,
    credential_hash,
    display_prefix,
    generate,
    well_formed,
)

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
PREFIXES = [pytest.param(API_KEY_PREFIX, id="api-key"), pytest.param(PAT_PREFIX, id="pat")]


def reference_checksum(body: str) -> str:
    """CRC32 of everything before the checksum, as 6 base62 digits, most significant first:
    written out here so that the format itself (what secret scanners rely on) is pinned."""
    number = zlib.crc32(body.encode("ascii"))
    digits = ""
    for _ in range(6):
        number, digit = divmod(number, 62)
        digits = BASE62[digit] + digits
    return digits


def forged(prefix: str, random_part: str) -> str:
    """A credential with a right checksum over whatever `prefix` and `random_part` are."""
    body = prefix + random_part
    return body + reference_checksum(body)


def test_prefixes() -> None:
    assert (API_KEY_PREFIX, PAT_PREFIX) == ("gwk_", "gwp_")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_generated_credentials_have_the_documented_format(prefix: str) -> None:
    made = [generate(prefix) for _ in range(200)]
    pattern = re.compile(re.escape(prefix) + r"[0-9A-Za-z]{32}[0-9A-Za-z]{6}")
    for credential in made:
        assert pattern.fullmatch(credential), credential
        assert len(credential) == credentials.LENGTH == 42
        assert credential[-6:] == reference_checksum(credential[:-6])
        assert well_formed(credential, prefix)
    assert len(set(made)) == len(made)
    # The random part draws on the whole alphabet (6400 characters: each of 62 shows up).
    assert set("".join(c[4:36] for c in made)) == set(BASE62)


def test_a_credential_is_well_formed_only_for_its_own_prefix() -> None:
    key, pat = generate(API_KEY_PREFIX), generate(PAT_PREFIX)
    assert well_formed(key, API_KEY_PREFIX)
    assert not well_formed(key, PAT_PREFIX)
    assert well_formed(pat, PAT_PREFIX)
    assert not well_formed(pat, API_KEY_PREFIX)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_single_character_change_is_refused(prefix: str) -> None:
    credential = generate(prefix)
    replacements = BASE62 + "_-+/=. é"
    changed = 0
    for position, original in enumerate(credential):
        for replacement in replacements:
            if replacement == original:
                continue
            typo = credential[:position] + replacement + credential[position + 1 :]
            assert not well_formed(typo, prefix), (position, replacement)
            changed += 1
    assert changed == 42 * (len(replacements) - 1)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_two_swapped_characters_are_refused(prefix: str) -> None:
    credential = generate(prefix)
    for position in range(4, len(credential) - 1):
        a, b = credential[position], credential[position + 1]
        if a == b:
            continue
        swapped = credential[:position] + b + a + credential[position + 2 :]
        assert not well_formed(swapped, prefix), position


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(forged("gwx_", "A" * 32), id="other-prefix"),
        pytest.param(forged("GWK_", "A" * 32), id="upper-case-prefix"),
        pytest.param(forged("gwk-", "A" * 32), id="dash"),
        pytest.param(forged("gwp_", "A" * 32), id="pat-prefix"),
        pytest.param(forged("xgwk", "A" * 32), id="shifted"),
        pytest.param(forged("", "gwk" + "A" * 33), id="no-underscore"),
    ],
)
def test_a_wrong_prefix_is_refused_even_with_a_right_checksum(credential: str) -> None:
    assert len(credential) == 42
    assert not well_formed(credential, API_KEY_PREFIX)


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("", id="empty"),
        pytest.param("gwk_", id="prefix-only"),
        pytest.param(forged("gwk_", "A" * 31), id="one-short"),
        pytest.param(forged("gwk_", "A" * 33), id="one-long"),
        pytest.param(forged("gwk_", "A" * 64), id="much-longer"),
        pytest.param(forged("gwk_", "A" * 32)[:-1], id="checksum-cut"),
        pytest.param(forged("gwk_", "A" * 32) + "A", id="trailing-character"),
        pytest.param(forged("gwk_", "A" * 32) + "\n", id="trailing-newline"),
        pytest.param(" " + forged("gwk_", "A" * 32), id="leading-space"),
    ],
)
def test_a_wrong_length_is_refused(credential: str) -> None:
    assert not well_formed(credential, API_KEY_PREFIX)


@pytest.mark.parametrize(
    "random_part",
    [
        pytest.param("A" * 31 + "-", id="dash"),
        pytest.param("A" * 31 + "_", id="underscore"),
        pytest.param("A" * 31 + "+", id="plus"),
        pytest.param("A" * 31 + "/", id="slash"),
        pytest.param("A" * 31 + " ", id="space"),
        pytest.param("A" * 31 + "=", id="equals"),
    ],
)
def test_characters_outside_base62_are_refused_even_with_a_right_checksum(
    random_part: str,
) -> None:
    credential = forged(API_KEY_PREFIX, random_part)
    assert len(credential) == 42
    assert not well_formed(credential, API_KEY_PREFIX)


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("gwk_" + "é" * 38, id="accented"),
        pytest.param("gwk_" + "A" * 31 + "٣" + "A" * 6, id="arabic-digit"),
        pytest.param("gwk_" + "A" * 31 + "\uff21" + "A" * 6, id="full-width-letter"),
        pytest.param("gwk_" + "A" * 32 + "ÄÄÄÄÄÄ", id="checksum-not-ascii"),
    ],
)
def test_non_ascii_characters_are_refused_without_an_error(credential: str) -> None:
    assert len(credential) == 42
    assert not well_formed(credential, API_KEY_PREFIX)


def test_the_stored_hash_is_the_sha256_in_hex() -> None:
    credential = generate(API_KEY_PREFIX)
    digest = credential_hash(credential)
    assert digest == hashlib.sha256(credential.encode("ascii")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert credential[4:36] not in digest
    assert credential_hash(generate(API_KEY_PREFIX)) != digest
    assert credential_hash(credential) == digest  # stable: it is what look-ups use


def test_the_display_prefix_is_the_start_and_says_little() -> None:
    credential = generate(PAT_PREFIX)
    shown = display_prefix(credential)
    assert shown == credential[:12]
    assert shown.startswith(PAT_PREFIX)
    assert credential.startswith(shown)
    # At most 8 of the 32 random characters: the rest stays unguessable.
    assert len(shown) - len(PAT_PREFIX) == 8
