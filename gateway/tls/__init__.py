"""TLS on the gateway's own listener (docs/tls.md): the context policy, the certificates chosen
by SNI and reloaded from disk, the accepting socket that tells TLS from plain HTTP, and the
plain-HTTP listener that redirects to https://."""
