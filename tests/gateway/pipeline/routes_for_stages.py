"""The routes.yaml the stage tests share: one route a feature, nothing listening behind them
(a stage never reaches the upstream)."""

ROUTES = """\
version: 1
upstreams:
  api:
    targets: ["http://127.0.0.1:9"]
routes:
  - {name: items, path: /v1/items, upstream: api, auth: none, methods: [GET, POST], max_body: 10}
  - {name: svc, path: /svc, upstream: api, auth: none, strip_prefix: true}
  - {name: hosted, path: /hosted, upstream: api, auth: none, host: api.example.com}
  - {name: admin, path: /admin, upstream: api, auth: jwt, roles: [admin, ops]}
  - {name: browser, path: /app, upstream: api, auth: jwt}
  - {name: partner, path: /partner, upstream: api, auth: api_key}
  - {name: tokens, path: /tokens, upstream: api, auth: pat}
  - {name: internal, path: /internal, upstream: api, auth: service}
  - {name: either, path: /either, upstream: api, auth: any}
  - {name: passing, path: /passing, upstream: api, auth: jwt, forward_credentials: true}
  - name: limited
    path: /limited
    upstream: api
    auth: none
    rate_limit: {key: ip, limit: 2, per: 1m}
  - name: shared
    path: /shared
    upstream: api
    auth: jwt
    cors:
      origins: ["https://app.example.com"]
      methods: [GET, PUT]
      expose: [X-Request-Id]
      credentials: true
      max_age: 5m
origins: ["https://platform.example.com"]
"""


def request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request to api.example.com."""
    lines = [f"{method} {target} HTTP/1.1", "Host: api.example.com", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
