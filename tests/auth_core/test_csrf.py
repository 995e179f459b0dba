"""The cross-site request forgery rule for cookie-authenticated requests."""

from __future__ import annotations

import pytest

from auth_core.csrf import origin_of_referer, refuse_cross_site
from auth_core.errors import CsrfRefused

WHITELIST = {"https://app.example.com"}


def allowed(origin: str) -> bool:
    return origin in WHITELIST


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_safe_methods_pass_without_proofs(method: str) -> None:
    refuse_cross_site(method, None, None, None, allowed)


def test_a_whitelisted_origin_with_the_custom_header_passes() -> None:
    refuse_cross_site("POST", "https://app.example.com", None, "fetch", allowed)


def test_the_referer_stands_in_for_a_missing_origin() -> None:
    refuse_cross_site("DELETE", None, "https://app.example.com/settings?x=1", "1", allowed)


@pytest.mark.parametrize(
    ("origin", "referer", "requested_with", "why"),
    [
        ("https://app.example.com", None, None, "X-Requested-With"),
        ("https://evil.example", None, "1", "origin"),
        ("null", "https://app.example.com/", "1", "origin"),
        (None, None, "1", "origin"),
        (None, "https://evil.example/page", "1", "origin"),
        (None, "javascript:alert(1)", "1", "origin"),
        (None, "https://user@app.example.com/", "1", "origin"),
    ],
)
def test_a_write_without_both_proofs_is_refused(
    origin: str | None, referer: str | None, requested_with: str | None, why: str
) -> None:
    with pytest.raises(CsrfRefused) as refused:
        refuse_cross_site("POST", origin, referer, requested_with, allowed)
    assert refused.value.status == 403
    assert refused.value.code == "csrf_refused"
    assert why in refused.value.detail


def test_origin_of_referer() -> None:
    assert origin_of_referer("https://App.Example.com:8443/a/b?c") == "https://app.example.com:8443"
    assert origin_of_referer("/relative") is None
    assert origin_of_referer("ftp://files.example.com/") is None
