"""HTTP/1.1 for the public side: a lean server protocol on httptools, its request and
response types. The request path (pipeline, proxy) works on these; nothing here routes,
authenticates or forwards."""

from gateway.http.request import Body, BodyError, Request
from gateway.http.response import Response, ResponseStream
from gateway.http.server import HttpServer, Limits

__all__ = ["Body", "BodyError", "HttpServer", "Limits", "Request", "Response", "ResponseStream"]
