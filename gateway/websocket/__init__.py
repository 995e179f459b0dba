"""Websocket routes (`websocket: true`): the handshake, authenticated before any upgrade, and
a frame-level relay between the client and the upstream (docs/websockets.md)."""
