"""The plain-HTTP listener's one answer: 308 to the same URL on https:// (docs/tls.md).

308, not 301: a client must repeat the method and body (RFC 9110 section 15.4.9). The host is
the one the client asked for, checked to be a host name or an IP address so that the answer
can only send it back to where it meant to go; the port is the TLS listener's, left out when
it is 443.
"""

from __future__ import annotations

import re

from auth_core import headers as h
from gateway.http.request import Request
from gateway.http.response import Response
from gateway.problem import PROBLEM_JSON, problem_body

# A DNS name, an IPv4 address or a bracketed IPv6 one, then an optional port.
_HOST = re.compile(
    r"(?P<name>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?"
)


def _bad_request(detail: str) -> Response:
    body = problem_body(400, "invalid_request", detail, None)
    return Response(400, [(h.W_CONTENT_TYPE, PROBLEM_JSON.encode())], body)


class HttpsRedirect:
    """A handler for gateway.http.server.HttpServer."""

    def __init__(self, https_port: int) -> None:
        self.port_suffix = "" if https_port == 443 else f":{https_port}"

    async def __call__(self, request: Request) -> Response:
        match = _HOST.fullmatch(request.header_text(h.B_HOST) or "")
        if match is None:
            return _bad_request("the request has no valid Host to redirect to")
        name = match.group("name")
        target = request.target
        if not target.startswith("/"):
            return _bad_request("the request target must be a path")
        location = f"https://{name.lower()}{self.port_suffix}{target}"
        return Response(308, [(h.W_LOCATION, location.encode())])
