"""An upstream's `tls` in routes.yaml: the client context for its https targets, made at load.

Verification is on unless the file says `verify: false` (logged at every load, as it should
never reach production): the certificate chain is checked against the system's CAs, or
against `ca_file` alone, and the name against the target's host (or `server_name`), which is
also what SNI carries. `cert_file` and `key_file` give the gateway a client certificate for
upstreams that require mutual TLS. Every file is read and checked here, so that a missing
file, a certificate that is not one, or a key that does not match its certificate is a
`file:line` error at load rather than a 502 on the first request. Relative paths are taken
from routes.yaml's own directory.
"""

from __future__ import annotations

import hashlib
import logging
import re
import ssl
from collections.abc import Sequence
from pathlib import Path

import yaml

from gateway.routing.schema import UPSTREAM_TLS
from gateway.routing.table import Target, UpstreamTls
from gateway.routing.yaml_walk import NodeWalker

log = logging.getLogger("gateway.routing")

TLS_KEYS = UPSTREAM_TLS.keys
# A DNS name (RFC 1123 labels) or an IPv4 address: what SNI and a certificate can name.
SERVER_NAME_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
MAX_FILE = 1024 * 1024  # a CA bundle is a few hundred KiB at most


class _Encrypted(Exception):
    """OpenSSL asked for a passphrase: the key file is encrypted."""


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal and the load would hang.
    raise _Encrypted


class TlsReader:
    """Reads the `tls` blocks of one routes.yaml; https upstreams without one share a single
    default context (the system's CAs), made once per load."""

    def __init__(self, walk: NodeWalker) -> None:
        self.walk = walk
        self.base = Path(walk.source).parent
        self._default: UpstreamTls | None = None

    def default(self) -> UpstreamTls:
        if self._default is None:
            self._default = UpstreamTls(client_context(), fingerprint="default")
        return self._default

    def read(
        self,
        block: tuple[yaml.Node, yaml.Node] | None,
        where: str,
        targets: Sequence[tuple[yaml.Node, Target]],
    ) -> UpstreamTls | None:
        """The TLS of an upstream with `targets`; `block` is its `tls` key and value, if any."""
        walk = self.walk
        if block is None:
            https = any(target.scheme == "https" for _, target in targets)
            return self.default() if https else None
        key_node, node = block
        for target_node, target in targets:
            if target.scheme != "https":
                raise walk.fail(
                    target_node,
                    f"{where}: '{target.url}' is http:// but the upstream has a 'tls' block "
                    f"(line {key_node.start_mark.line + 1}); tls applies to https:// targets",
                )
        where = f"{where}.tls"
        spec = walk.mapping(node, where, TLS_KEYS)
        verify = walk.boolean(spec["verify"][1], f"{where}.verify") if "verify" in spec else True
        server_name = self._server_name(spec, where)
        # Read now for the fingerprint, and so that an unreadable file is told as such.
        digest = hashlib.sha256(f"{verify}\0{server_name}".encode())
        if "ca_file" in spec and not verify:
            raise walk.fail(
                spec["ca_file"][1],
                f"{where}: ca_file with verify: false (nothing would be checked)",
            )
        if ("cert_file" in spec) != ("key_file" in spec):
            present = "cert_file" if "cert_file" in spec else "key_file"
            raise walk.fail(
                spec[present][0], f"{where}: cert_file and key_file go together (mutual TLS)"
            )
        for key in ("ca_file", "cert_file", "key_file"):
            if key in spec:
                digest.update(f"\0{key}\0".encode() + self._file(spec[key][1], f"{where}.{key}"))

        context = client_context(system_cas=verify and "ca_file" not in spec)
        if "ca_file" in spec:
            self._load_cas(context, where, spec["ca_file"][1])
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if "cert_file" in spec:
            self._load_chain(context, where, spec["cert_file"][1], spec["key_file"][1])
        if not verify:
            log.warning(
                "%s:%d: %s.verify is false: the upstream's certificate is not checked "
                "(anyone on the path can read and change its traffic; never in production)",
                walk.source,
                spec["verify"][1].start_mark.line + 1,
                where,
            )
        return UpstreamTls(context, server_name, verify, digest.hexdigest())

    def _server_name(self, spec: dict[str, tuple[yaml.Node, yaml.Node]], where: str) -> str | None:
        if "server_name" not in spec:
            return None
        node = spec["server_name"][1]
        name = self.walk.string(node, f"{where}.server_name").lower()
        if not SERVER_NAME_RE.fullmatch(name):
            raise self.walk.fail(node, f"{where}.server_name: '{name}' is not a DNS name")
        return name

    def _load_cas(self, context: ssl.SSLContext, where: str, node: yaml.Node) -> None:
        path = self._path(node, f"{where}.ca_file")
        try:
            # A path, not the bytes read: OpenSSL skips what lies between certificates (bundles
            # carry comments, not always in ASCII), which cadata= would refuse.
            context.load_verify_locations(cafile=path)
        except ssl.SSLError:
            raise self.walk.fail(node, f"{where}.ca_file: no PEM certificate in {path}") from None
        except OSError as exc:
            raise self.walk.fail(
                node, f"{where}.ca_file: cannot read {path}: {exc.strerror}"
            ) from None

    def _path(self, node: yaml.Node, where: str) -> Path:
        path = Path(self.walk.string(node, where))
        return path if path.is_absolute() else self.base / path

    def _file(self, node: yaml.Node, where: str) -> bytes:
        path = self._path(node, where)
        try:
            with path.open("rb") as file:
                data = file.read(MAX_FILE + 1)
        except OSError as exc:
            raise self.walk.fail(node, f"{where}: cannot read {path}: {exc.strerror}") from None
        if len(data) > MAX_FILE:
            raise self.walk.fail(node, f"{where}: {path} is larger than 1 MiB")
        return data

    def _load_chain(
        self, context: ssl.SSLContext, where: str, cert_node: yaml.Node, key_node: yaml.Node
    ) -> None:
        walk = self.walk
        cert = self._path(cert_node, f"{where}.cert_file")
        key = self._path(key_node, f"{where}.key_file")
        try:
            # The certificate on its own first, so that its faults are told apart from the key's.
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert)
        except (ssl.SSLError, OSError):
            raise walk.fail(
                cert_node, f"{where}.cert_file: {cert} is not a PEM certificate"
            ) from None
        try:
            context.load_cert_chain(cert, key, password=_no_passphrase)
        except _Encrypted:
            raise walk.fail(
                key_node,
                f"{where}.key_file: {key} is encrypted; give the gateway an unencrypted key "
                "that only it can read",
            ) from None
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                reason = "is not the private key of cert_file's certificate"
            else:
                reason = "is not a PEM private key"
            raise walk.fail(key_node, f"{where}.key_file: {key} {reason}") from None
        except OSError as exc:
            raise walk.fail(
                key_node, f"{where}.key_file: cannot read {key}: {exc.strerror}"
            ) from None


def client_context(*, system_cas: bool = True) -> ssl.SSLContext:
    """A verifying client context: TLS 1.2 at least, the hostname checked; trusting the
    system's CAs, or (`system_cas` false) none until some are loaded."""
    # Not ssl.create_default_context(): it would honour SSLKEYLOGFILE, writing session keys
    # wherever the environment says.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if system_cas:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return context
