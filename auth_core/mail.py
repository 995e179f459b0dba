"""Outgoing mail (verification and password-reset links): SMTP, or one .eml file a message in
an outbox directory (the embedded default, and what tests read)."""

from __future__ import annotations

import asyncio
import smtplib
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit


class Mailer:
    def __init__(self, url: str, sender: str = "gateway@localhost") -> None:
        self.url = url
        self.sender = sender

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = f"<{uuid.uuid4().hex}@gateway>"
        message.set_content(body)
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        if self.url.startswith("outbox:"):
            directory = Path(self.url[len("outbox:") :])
            directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}.eml"
            tmp = directory / f".{name}.tmp"
            tmp.write_bytes(bytes(message))
            tmp.replace(directory / name)  # readers never see half a message
            return
        parts = urlsplit(self.url)
        with smtplib.SMTP(parts.hostname or "localhost", parts.port or 25, timeout=10) as smtp:
            smtp.send_message(message)
