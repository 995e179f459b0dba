"""The login page: plain HTML and one form, no script, no external asset (the Content
Security Policy forbids loading any), accessible: a language, a heading, labelled fields, and
an error announced to screen readers (`role="alert"`) and tied to the fields it concerns."""

from __future__ import annotations

from html import escape

from auth_core import headers as h
from gateway.problem import SERVER_NAME

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
)
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;display:flex;justify-content:center}"
    "main{max-width:22rem;width:100%;padding:2rem 1rem}"
    "label{display:block;margin-top:1rem;font-weight:600}"
    "input{display:block;width:100%;box-sizing:border-box;padding:.5rem;font:inherit}"
    "button{margin-top:1.5rem;padding:.5rem 1.5rem;font:inherit}"
    ".error{color:#a00;border:1px solid #a00;padding:.5rem}"
)


def page_headers(request_id: str) -> list[tuple[bytes, bytes]]:
    return [
        (h.W_CONTENT_TYPE, b"text/html; charset=utf-8"),
        (h.W_CACHE_CONTROL, b"no-store"),
        (h.W_CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY.encode()),
        (h.W_X_FRAME_OPTIONS, b"DENY"),
        (h.W_X_CONTENT_TYPE_OPTIONS, b"nosniff"),
        # Not no-referrer: under that policy a browser sends `Origin: null` with the form's
        # POST (Fetch standard, "serializing a request origin"), and the login refuses it.
        # same-origin keeps the Origin of our own form, and no URL of ours leaves the host.
        (h.W_REFERRER_POLICY, b"same-origin"),
        (h.W_X_REQUEST_ID, request_id.encode()),
        (h.W_SERVER, SERVER_NAME.encode()),
    ]


def _document(title: str, body: str) -> bytes:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    ).encode()


def login_page(
    *, action: str, return_to: str, token: str, email: str = "", error: str | None = None
) -> bytes:
    """The sign-in form; `error` is shown above it and announced."""
    described = ' aria-describedby="login-error" aria-invalid="true"' if error else ""
    alert = f'<p id="login-error" class="error" role="alert">{escape(error)}</p>\n' if error else ""
    return _document(
        "Sign in",
        "<h1>Sign in</h1>\n"
        f"{alert}"
        f'<form method="post" action="{escape(action)}">\n'
        f'<input type="hidden" name="return_to" value="{escape(return_to)}">\n'
        f'<input type="hidden" name="csrf" value="{escape(token)}">\n'
        '<label for="email">E-mail address</label>\n'
        f'<input id="email" name="email" type="email" autocomplete="username" required'
        f' value="{escape(email)}"{described}>\n'
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" autocomplete="current-password"'
        f" required{described}>\n"
        '<button type="submit">Sign in</button>\n'
        "</form>\n",
    )


def logout_page(*, action: str, token: str) -> bytes:
    """A button that signs out (a form, so that pages without script can offer it)."""
    return _document(
        "Sign out",
        "<h1>Sign out</h1>\n"
        f'<form method="post" action="{escape(action)}">\n'
        f'<input type="hidden" name="csrf" value="{escape(token)}">\n'
        '<button type="submit">Sign out</button>\n'
        "</form>\n",
    )
