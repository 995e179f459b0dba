"""Free text from outside (e-mail addresses, names, external ids, token claims): what it must
not hold.

Control characters in an address or a name end up in logs (a forged log line), terminals (an
ANSI escape through `gateway users import`), mails and context headers; lone surrogate halves
cannot be encoded as UTF-8 at all (a JSON `"\\ud800"`, a command-line argument that is not
UTF-8). One rule, used by every place that takes such text, so no copy drifts.
"""

from __future__ import annotations

import re

from auth_core.errors import InvalidRequest

# C0 controls and DEL, C1 controls, U+2028/U+2029 (line breaks to JavaScript and to some log
# viewers), and surrogates, which are never characters of their own.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def unsafe_text(value: str) -> bool:
    """Whether `value` holds a character no address, name or claim may hold."""
    return _UNSAFE.search(value) is not None


def plain_text(value: str, what: str) -> str:
    """`value`, or InvalidRequest naming `what` when it holds a control character."""
    if _UNSAFE.search(value) is not None:
        raise InvalidRequest(f"{what} must not contain control characters")
    return value


def shown(value: str) -> str:
    """`value` safe to print on a terminal or in a log line: unsafe characters escaped."""
    return _UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", value)


MAX_NAME = 200


def valid_person_name(value: object) -> str | None:
    """A person's display name as given (None: none), at most MAX_NAME characters of text."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise InvalidRequest(f"name must be a string of at most {MAX_NAME} characters")
    return plain_text(value, "name")
