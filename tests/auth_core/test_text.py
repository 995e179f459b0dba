"""The one rule for free text (addresses, names, ids, claims): which characters it refuses,
and how refused text is shown on a terminal."""

from __future__ import annotations

import pytest

from auth_core.errors import InvalidRequest
from auth_core.text import plain_text, shown, unsafe_text, valid_person_name

REFUSED = [
    *(chr(code) for code in range(0x00, 0x20)),  # C0
    "\x7f",  # DEL
    *(chr(code) for code in range(0x80, 0xA0)),  # C1
    "\u2028",
    "\u2029",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
]
KEPT = ["Ada Lovelace", "Zoë", "李雷", "\U0001f600", "O'Brien-Smith", "\u00a0", "\u200d", "\ufeff"]


@pytest.mark.parametrize("char", REFUSED, ids=lambda char: f"U+{ord(char):04X}")
def test_control_characters_and_surrogates_are_refused(char: str) -> None:
    assert unsafe_text(f"ada{char}@example.com")
    with pytest.raises(InvalidRequest, match="name must not contain control characters"):
        plain_text(f"Ada{char}", "name")
    assert char not in shown(f"Ada{char}")
    assert f"\\u{ord(char):04x}" in shown(f"Ada{char}")


@pytest.mark.parametrize("text", KEPT)
def test_text_of_any_script_is_kept(text: str) -> None:
    assert not unsafe_text(text)
    assert plain_text(text, "name") == text
    assert shown(text) == text


@pytest.mark.parametrize(
    "value", [pytest.param(42, id="a-number"), pytest.param("x" * 201, id="201-characters")]
)
def test_a_name_is_a_string_of_at_most_200_characters(value: object) -> None:
    with pytest.raises(InvalidRequest):
        valid_person_name(value)
    assert valid_person_name("x" * 200) == "x" * 200
    assert valid_person_name(None) is None
