"""routes.yaml's schema: every key the loader accepts, with its type, default and description.

As a Kong plugin's schema.lua, this is the one list of keys: the loader takes each mapping's
allowed and required keys, and the type of its plain keys, from here, and
`scripts/routes-reference` writes docs/routes.md from it (a test holds the file to the
script's output), so the reference cannot drift from what the loader accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

# The types a key may have, as the reference names them.
STRING = "string"
BOOLEAN = "boolean"
INTEGER = "integer"
DURATION = "duration"
SIZE = "size"
STRINGS = "list of strings"
MAPPING = "mapping"
LIST = "list"
MAPPING_OR_LIST = "mapping or list of mappings"


@dataclass(frozen=True)
class Field:
    """One key: its type, its default as written in routes.yaml ("" when it has none)."""

    name: str
    type: str
    description: str
    default: str = ""
    required: bool = False


@dataclass(frozen=True)
class Section:
    """One mapping of routes.yaml: where it sits, and its keys in the order documented."""

    path: str
    description: str
    fields: tuple[Field, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if field.required)

    def of_type(self, kind: str) -> tuple[str, ...]:
        """The keys of this type, in order: the loader reads the plain ones by their type."""
        return tuple(field.name for field in self.fields if field.type == kind)


TOP_LEVEL = Section(
    "(top level)",
    "The file itself.",
    (
        Field("version", INTEGER, "The format's version; `1` is the only one.", required=True),
        Field(
            "upstreams",
            MAPPING,
            "The services routes forward to, by name (see `upstreams.<name>`). "
            "No upstream may be called `auth_core` (the built-in one) or `forward_auth`.",
        ),
        Field("routes", LIST, "The routes (see `routes[]`).", required=True),
        Field(
            "origins",
            STRINGS,
            "Browser origins of users with no tenant, and of the login page's return URLs: "
            "exact `scheme://host[:port]`, or `https://*.example.com` for subdomains only.",
            "[]",
        ),
        Field("metrics", MAPPING, "Who may read `/metrics` (see `metrics`)."),
        Field(
            "underscores_in_headers",
            BOOLEAN,
            "The default of every route's own `underscores_in_headers`.",
            "false",
        ),
    ),
)

UPSTREAM = Section(
    "upstreams.<name>",
    "An upstream service. Its name is 1-64 of `A-Z a-z 0-9 . _ -`: the audience of the "
    "context signatures its service checks.",
    (
        Field(
            "targets",
            STRINGS,
            "`http://host:port` or `https://host:port` URLs, balanced round-robin; "
            "`https://` targets are spoken to over verified TLS.",
            required=True,
        ),
        Field("connect_timeout", DURATION, "Longest wait for a connection to a target.", "2s"),
        Field(
            "timeout",
            DURATION,
            "Longest silence from the upstream: for the response head, between pieces of its "
            "body, or while it takes nothing of a streamed request body.",
            "30s",
        ),
        Field(
            "max_fails",
            INTEGER,
            "Consecutive failures that take a target out (`0`: never).",
            "3",
        ),
        Field("fail_timeout", DURATION, "How long a failed target stays out.", "10s"),
        Field("keepalive", INTEGER, "Idle connections kept per target.", "128"),
        Field("idle_timeout", DURATION, "Idle connections older than this are closed.", "60s"),
        Field(
            "tls",
            MAPPING,
            "How the gateway speaks TLS to the upstream (see `upstreams.<name>.tls`); only on "
            "an upstream whose targets are all `https://`.",
        ),
    ),
)

UPSTREAM_TLS = Section(
    "upstreams.<name>.tls",
    "TLS to an upstream's `https://` targets. Relative paths are taken from the directory of "
    "routes.yaml; every file is read and checked at load, and again at each reload.",
    (
        Field(
            "ca_file",
            STRING,
            "A PEM file of the CAs to trust instead of the system's.",
            "the system's CAs",
        ),
        Field(
            "cert_file",
            STRING,
            "The gateway's client certificate (PEM), for mutual TLS; with `key_file`.",
        ),
        Field("key_file", STRING, "The client certificate's key (PEM, unencrypted).", ""),
        Field(
            "server_name",
            STRING,
            "The name sent as SNI and checked in the certificate.",
            "each target's host",
        ),
        Field(
            "verify",
            BOOLEAN,
            "`false` checks nothing (a warning at every load; not for production).",
            "true",
        ),
    ),
)

ROUTE = Section(
    "routes[]",
    "A route: the requests it matches, how they authenticate, and where they go.",
    (
        Field(
            "name",
            STRING,
            "Unique, and not beginning with `@` (the labels of requests answered without a"
            " route); labels metrics and logs.",
            required=True,
        ),
        Field(
            "path",
            STRING,
            "Canonical: leading slash, no trailing slash, no dot segments, repeated slashes or "
            "escapes. Matches itself and everything below it on a segment boundary.",
            required=True,
        ),
        Field(
            "upstream",
            STRING,
            "An upstream of `upstreams`, or `auth_core`: the auth core's API, answered inside "
            "the gateway.",
            required=True,
        ),
        Field(
            "auth",
            STRING,
            "`none`, `jwt`, `api_key`, `pat`, `any` or `service` (see authentication.md).",
            required=True,
        ),
        Field(
            "methods",
            STRINGS,
            "The methods allowed (others: 405); `GET` also allows `HEAD`.",
            "every method",
        ),
        Field(
            "host",
            STRING,
            "The `Host` the route is for; `*.example.com` matches subdomains (not `example.com`).",
            "any host",
        ),
        Field(
            "strip_prefix",
            BOOLEAN,
            "`true`: the route's path is removed before forwarding (`/v1/items/7` is "
            "forwarded as `/7`); the built-in upstream always sees the canonical path.",
            "false",
        ),
        Field("timeout", DURATION, "Overrides the upstream's `timeout`.", "the upstream's"),
        Field("max_body", SIZE, "Larger request bodies get 413 `payload_too_large`.", "10m"),
        Field(
            "websocket",
            BOOLEAN,
            "`true`: websocket upgrades are relayed (see websockets.md).",
            "false",
        ),
        Field(
            "roles",
            STRINGS,
            "The caller needs any one of them (403 `insufficient_role` otherwise); not on "
            "`auth: none`.",
            "[]",
        ),
        Field(
            "rate_limit",
            MAPPING_OR_LIST,
            "One `{key, limit, per}` or a list of up to 4, layered (see `routes[].rate_limit`).",
        ),
        Field(
            "cors",
            MAPPING,
            "The gateway answers preflights and marks answers (see `routes[].cors`).",
        ),
        Field(
            "forward_credentials",
            BOOLEAN,
            "`true`: the caller's credential goes on to the upstream; only on a route that "
            "authenticates and proxies.",
            "false",
        ),
        Field(
            "underscores_in_headers",
            BOOLEAN,
            "`true`: header names with `_` are forwarded (except those that read as one the "
            "gateway decides).",
            "the top level's",
        ),
        Field(
            "browser",
            BOOLEAN,
            "`true`: the login page's session cookie is accepted too, and a browser without a "
            "session is sent to log in; `auth: jwt` or `any` to an upstream of its own.",
            "false",
        ),
    ),
)

RATE_LIMIT = Section(
    "routes[].rate_limit",
    "A limit (GCRA: a burst of `limit` at once, then one every `per / limit`). A list is "
    "layered: a request passes only when every limit has room.",
    (
        Field(
            "key",
            STRING,
            "What is counted: `user`, `tenant`, `credential` (the API key or PAT, or the "
            "session of a JWT) or `ip`; a caller without the one named is counted by address.",
            required=True,
        ),
        Field("limit", INTEGER, "Requests allowed a period (at least 1).", required=True),
        Field("per", DURATION, "The period.", required=True),
    ),
)

CORS = Section(
    "routes[].cors",
    "CORS answered by the gateway: preflights from a listed origin get 204, others 403 "
    "`origin_not_allowed`.",
    (
        Field(
            "origins",
            STRINGS,
            "The origins allowed: exact, or `https://*.example.com`; not empty.",
            required=True,
        ),
        Field("methods", STRINGS, "The methods a preflight allows.", "the route's methods"),
        Field(
            "headers",
            STRINGS,
            "The request headers a preflight allows.",
            "whatever a preflight asks for",
        ),
        Field("expose", STRINGS, "Response headers the page may read.", "[]"),
        Field("credentials", BOOLEAN, "Send `Access-Control-Allow-Credentials: true`.", "false"),
        Field("max_age", DURATION, "How long a browser may keep a preflight's answer.", "10m"),
    ),
)

METRICS = Section(
    "metrics",
    "The gateway's `/metrics`.",
    (
        Field(
            "allow",
            STRINGS,
            "IP addresses or CIDRs that may read `/metrics` (others get 403).",
            '["127.0.0.0/8", "::1/128"]',
        ),
    ),
)

SECTIONS = (TOP_LEVEL, UPSTREAM, UPSTREAM_TLS, ROUTE, RATE_LIMIT, CORS, METRICS)
