"""The certificates the TLS listener serves, chosen by SNI, and their reloads.

One context a certificate (its host name, or `default`). The listener's own context holds no
certificate: its SNI callback hands each handshake to the context of the name asked for. That
listener context is made once, before the workers are forked, and never replaced, because it
holds the session-ticket keys: every worker decrypts every worker's tickets, and tickets stay
good across reloads (resumption survives a certificate renewal, as with nginx's shared keys).

A name nobody has a certificate for (or no SNI at all) gets the `default` certificate; without
one, the handshake ends with the `unrecognized_name` alert (RFC 6066 section 3).
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from auth_core.errors import SettingsError
from gateway.config import Settings
from gateway.tls.policy import server_context

log = logging.getLogger("gateway.tls")

DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate chain and its key, for one host name (or DEFAULT)."""

    name: str
    cert: Path
    key: Path
    variable: str  # the setting that named the files, for messages


@dataclass(frozen=True, slots=True)
class Loaded:
    """A complete, valid set: a context per name, and the digest of the files read."""

    contexts: dict[str, ssl.SSLContext]
    digest: str


def key_pairs(settings: Settings) -> list[KeyPair]:
    """The pairs the settings name: GATEWAY_TLS_CERT_FILE and _KEY_FILE, or every NAME.crt
    with its NAME.key in GATEWAY_TLS_DIR."""
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        return [
            KeyPair(DEFAULT, settings.tls_cert_file, settings.tls_key_file, "GATEWAY_TLS_CERT_FILE")
        ]
    directory = settings.tls_dir
    if directory is None:
        return []
    variable = "GATEWAY_TLS_DIR"
    try:
        certs = sorted(path for path in directory.iterdir() if path.suffix == ".crt")
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot list {directory}: {exc.strerror}") from None
    if not certs:
        raise SettingsError(
            f"{variable}: no NAME.crt in {directory} (one NAME.crt and NAME.key a host name, "
            f"the default one named {DEFAULT})"
        )
    pairs = []
    for cert in certs:
        key = cert.with_suffix(".key")
        if not key.exists():
            raise SettingsError(f"{variable}: {cert.name} has no {key.name} beside it")
        pairs.append(KeyPair(cert.stem.lower(), cert, key, variable))
    return pairs


def _load_pair(pair: KeyPair) -> tuple[ssl.SSLContext, bytes]:
    """The pair's context, and the bytes read (for the digest); SettingsError in one line."""
    try:
        content = pair.cert.read_bytes() + b"\0" + pair.key.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"{pair.variable}: cannot read {exc.filename}: {exc.strerror}"
        ) from None
    context = server_context()
    try:
        context.load_cert_chain(pair.cert, pair.key)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            why = "the key does not belong to the certificate"
        else:
            why = f"not a PEM certificate chain and private key ({exc.reason or exc})"
        raise SettingsError(f"{pair.variable}: {pair.cert} / {pair.key}: {why}") from None
    except OSError as exc:
        raise SettingsError(
            f"{pair.variable}: cannot read {pair.cert} / {pair.key}: {exc.strerror}"
        ) from None
    return context, content


def load(pairs: list[KeyPair]) -> Loaded:
    digest = hashlib.sha256()
    contexts: dict[str, ssl.SSLContext] = {}
    for pair in pairs:
        context, content = _load_pair(pair)
        contexts[pair.name] = context
        digest.update(pair.name.encode() + b"\0" + content)
    return Loaded(contexts, digest.hexdigest())


class Certificates:
    """The listener's context and the certificates behind it; `reload()` reads them again."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pairs = key_pairs(settings)
        if not self._pairs:
            raise SettingsError("TLS is not configured (GATEWAY_TLS_CERT_FILE or GATEWAY_TLS_DIR)")
        loaded = load(self._pairs)
        self._contexts = loaded.contexts
        self.digest = loaded.digest
        self.context = server_context()
        self.context.sni_callback = self._choose

    @property
    def names(self) -> list[str]:
        return sorted(self._contexts)

    def watched(self) -> list[Path]:
        """The files (and the directory, whose entries come and go) a change of which is a
        reason to reload."""
        paths = [path for pair in self._pairs for path in (pair.cert, pair.key)]
        if self.settings.tls_dir is not None:
            paths.append(self.settings.tls_dir)
        return paths

    def reload(self) -> str:
        """Read the files again: "applied", "unchanged", or "refused" (the old set stays in
        force; the reason is logged in one line)."""
        try:
            pairs = key_pairs(self.settings)
            loaded = load(pairs)
        except SettingsError as exc:
            log.error("TLS certificates refused, the previous ones stay in force: %s", exc)
            return "refused"
        self._pairs = pairs
        if loaded.digest == self.digest:
            return "unchanged"
        # Handshakes under way keep the context they were given; connections already
        # established keep theirs to the end.
        self._contexts = loaded.contexts
        self.digest = loaded.digest
        log.info("TLS certificates reloaded: %s", ", ".join(self.names))
        return "applied"

    @property
    def has_default(self) -> bool:
        return DEFAULT in self._contexts

    def serves(self, server_name: str | None) -> bool:
        """A certificate would be chosen for this name (None: no SNI)."""
        return self._lookup(server_name) is not None

    def _lookup(self, server_name: str | None) -> ssl.SSLContext | None:
        contexts = self._contexts
        if server_name:
            name = server_name.lower()
            chosen = contexts.get(name)
            if chosen is None and "." in name:
                chosen = contexts.get("*." + name.split(".", 1)[1])
            if chosen is not None:
                return chosen
        return contexts.get(DEFAULT)

    def _choose(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: object
    ) -> int | None:
        chosen = self._lookup(server_name)
        if chosen is None:
            # Rarely reached: the listener refuses such names before the handshake (a
            # ClientHello split over several packets gets here).
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        connection.context = chosen
        return None
