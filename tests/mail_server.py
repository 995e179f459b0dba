"""A real SMTP server on loopback, small enough to read: it accepts what the gateway's mailer
sends, keeps every message, and can hold its greeting back until a test lets it go (to show
that an answer did not wait for a mail, or that a shutdown did)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy


@dataclass
class MailServer:
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)  # a client is talking
    release: asyncio.Event = field(default_factory=asyncio.Event)  # greet (set: at once)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected.set()
        await self.release.wait()
        writer.write(b"220 localhost test SMTP\r\n")
        data: list[bytes] = []
        in_data = False
        try:
            while line := await reader.readline():
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        raw = b"".join(data).replace(b"\r\n", b"\n")
                        message = message_from_bytes(raw, policy=default_policy)
                        assert isinstance(message, EmailMessage)
                        self.messages.append(message)
                        writer.write(b"250 queued\r\n")
                    else:
                        data.append(line[1:] if line.startswith(b"..") else line)
                    continue
                verb = line[:4].upper()
                if verb == b"DATA":
                    in_data, data = True, []
                    writer.write(b"354 go on\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:  # EHLO, HELO, MAIL, RCPT, RSET, NOOP: all fine
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def mail_server(*, hold: bool = False) -> AsyncIterator[MailServer]:
    """An SMTP server on 127.0.0.1; with `hold`, each client waits for `release`."""
    server = MailServer()
    if not hold:
        server.release.set()
    listener = await asyncio.start_server(server._session, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        server.release.set()
        listener.close()
        await listener.wait_closed()
