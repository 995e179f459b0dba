"""Optional compiled build of the request path (docs/development.md: the compiled build).

`pip install .` builds the pure-Python package, as always. With GATEWAY_COMPILE=1 the modules
every proxied request runs through are compiled with mypyc into C extensions; the package
behaves the same (the test suite runs against both, scripts/test), and the gateway's own work
per request costs about half as much (bench/README.md). Compiling needs mypy and a C compiler
in the build environment, so it is never attempted unless asked for.
"""

from __future__ import annotations

import os

from setuptools import setup

# What is compiled: this list and nothing else, one module a line (docs/development.md: the
# compiled build). The request path: what a proxied request runs through from the client's
# bytes to the upstream's answer. A module split in two, or a new module on that path, is added
# here by hand (the build fails on a listed file that is gone). Plain Python subclasses of the
# extension points (gateway.pipeline.stage.Stage, gateway.pipeline.authn.base.Authenticator)
# work in the compiled build: both are marked allow_interpreted_subclasses, so nothing has to be
# compiled because it subclasses them.
COMPILED = [
    "gateway/http/__init__.py",
    "gateway/http/connection.py",
    "gateway/http/limits.py",
    "gateway/http/request.py",
    "gateway/http/response.py",
    "gateway/http/server.py",
    "gateway/proxy/connection.py",
    "gateway/proxy/forward.py",
    "gateway/proxy/headers.py",
    "gateway/proxy/pool.py",
    "gateway/pipeline/__init__.py",
    "gateway/pipeline/authenticate.py",
    "gateway/pipeline/authn/__init__.py",
    "gateway/pipeline/authn/api_key.py",
    "gateway/pipeline/authn/base.py",
    "gateway/pipeline/authn/first_match.py",
    "gateway/pipeline/authn/jwt.py",
    "gateway/pipeline/authn/pat.py",
    "gateway/pipeline/authn/service.py",
    "gateway/pipeline/authorize.py",
    "gateway/pipeline/bans.py",
    "gateway/pipeline/chain.py",
    "gateway/pipeline/client_address.py",
    "gateway/pipeline/context.py",
    "gateway/pipeline/exchange.py",
    "gateway/pipeline/limit_body.py",
    "gateway/pipeline/match_route.py",
    "gateway/pipeline/parse_target.py",
    "gateway/pipeline/preflight.py",
    "gateway/pipeline/rate_limit.py",
    "gateway/pipeline/stage.py",
    "gateway/pipeline/withhold.py",
    "gateway/routing/__init__.py",
    "gateway/routing/loader.py",
    "gateway/routing/policies.py",
    "gateway/routing/upstreams.py",
    "gateway/routing/yaml_walk.py",
    "gateway/routing/paths.py",
    "gateway/routing/table.py",
    "gateway/server/app.py",
    "gateway/server/dispatch.py",
    "gateway/server/recording.py",
    "gateway/accesslog.py",
    "gateway/tracing.py",
    "gateway/context.py",
    "gateway/operations.py",
    "gateway/websocket/proxy.py",
    "metrics/registry.py",
    "auth_core/service.py",
    "auth_core/revocation.py",
    "auth_core/stats.py",
    "auth_core/models.py",
    # The header names: read on every request, a static load once compiled, a lookup if not.
    "auth_core/headers.py",
]


def ext_modules() -> list[object]:
    if os.environ.get("GATEWAY_COMPILE", "") not in ("1", "true", "yes"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            "GATEWAY_COMPILE=1 needs mypy (which carries mypyc) where the package is built: "
            "pip install mypy setuptools, then pip install --no-build-isolation ."
        ) from exc
    gone = [path for path in COMPILED if not os.path.isfile(path)]
    if gone:
        raise SystemExit(f"setup.py: COMPILED lists files that do not exist: {', '.join(gone)}")
    return list(mypycify(COMPILED, opt_level="3"))


setup(ext_modules=ext_modules())
