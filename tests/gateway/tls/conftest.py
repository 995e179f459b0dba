"""A gateway serving TLS in the test's event loop, with certificates a test CA signed."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.routing.loader import load_route_table
from gateway.server.run import Worker, bind
from gateway.tls.certificates import Certificates
from tests.gateway.tls.certs import Authority
from tests.support import LOOPBACK, auth_settings, quiet_settings


@dataclass
class TlsGateway:
    worker: Worker
    certs: Path  # GATEWAY_TLS_DIR
    authority: Authority

    @property
    def port(self) -> int:
        return self.worker.port

    @property
    def redirect_port(self) -> int:
        assert self.worker.redirect_sock is not None
        return int(self.worker.redirect_sock.getsockname()[1])


StartTls = Callable[..., AbstractAsyncContextManager[TlsGateway]]


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority.create(tmp_path)


@pytest.fixture
def start_tls(tmp_path: Path, authority: Authority) -> StartTls:
    """`async with start_tls(routes_yaml, names=("a.test", ...), redirect=True, **settings)`."""

    @asynccontextmanager
    async def start(
        routes_yaml: str,
        *,
        names: tuple[str, ...] = ("default",),
        redirect: bool = False,
        **overrides: Any,
    ) -> AsyncIterator[TlsGateway]:
        certs = tmp_path / "certs"
        certs.mkdir(exist_ok=True)
        for name in names:
            host = "localhost" if name == "default" else name
            authority.issue(certs / f"{name}.crt", certs / f"{name}.key", host)
        config = tmp_path / "routes.yaml"
        config.write_text(routes_yaml)
        settings: Settings = dataclasses.replace(
            quiet_settings(), tls_dir=certs, auth=auth_settings(tmp_path), **overrides
        )
        worker = Worker(
            settings,
            load_route_table(config),
            bind(LOOPBACK, 0),
            config_path=config,
            certificates=Certificates(settings),
            redirect_sock=bind(LOOPBACK, 0) if redirect else None,
        )
        await worker.start()
        try:
            yield TlsGateway(worker, certs, authority)
        finally:
            await worker.stop()
            worker.sock.close()
            if worker.redirect_sock is not None:
                worker.redirect_sock.close()

    return start
