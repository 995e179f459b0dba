"""Optional compiled build of the request path (README, "Development": the compiled build).

`pip install .` builds the pure-Python package, as always. With GATEWAY_COMPILE=1 the modules
every proxied request runs through are compiled with mypyc into C extensions; the package
behaves the same (the test suite runs against both, scripts/test), and the gateway's own work
per request costs about half as much (bench/README.md). Compiling needs mypy and a C compiler
in the build environment, so it is never attempted unless asked for.
"""

from __future__ import annotations

import os

from setuptools import setup

# The request path: what a proxied request runs through from the client's bytes to the
# upstream's answer, and the classes those modules subclass (mypyc needs a compiled class's
# bases compiled too: operations and the websocket proxy subclass the pipeline's Stage).
COMPILED = [
    "gateway/http/",
    "gateway/proxy/",
    "gateway/pipeline/",
    "gateway/routing/",
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
    return list(mypycify(COMPILED, opt_level="3"))


setup(ext_modules=ext_modules())
