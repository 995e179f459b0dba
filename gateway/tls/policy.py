"""How the gateway speaks TLS to clients: one policy, applied to every context it makes.

TLS 1.2 and 1.3 only, and for 1.2 the ECDHE suites of Mozilla's "intermediate" configuration
(https://wiki.mozilla.org/Security/Server_Side_TLS, version 5.7); its DHE suites are left out,
as no DH parameters are loaded (they would never be chosen). TLS 1.3 keeps OpenSSL's suites,
which are the ones Mozilla lists. Like Mozilla's configuration, the client's order of suites
wins: all are strong, and a phone without AES instructions rightly prefers ChaCha20.
"""

from __future__ import annotations

import ssl

INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
ALPN = ["http/1.1"]


def server_context() -> ssl.SSLContext:
    """A server context with the policy and no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(INTERMEDIATE_CIPHERS)
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # Session resumption: OpenSSL's stateless tickets (on unless OP_NO_TICKET), for TLS 1.2
    # and 1.3 alike; their keys belong to the listener's context (see certificates.py).
    context.options &= ~ssl.OP_NO_TICKET
    context.set_alpn_protocols(ALPN)
    return context
