"""Following websocket frames (RFC 6455 section 5) as bytes go by, without holding them.

The relay forwards bytes as they arrive; a FrameTracker, one a direction, reads only the frame
headers to know where frames begin and end (so a close frame can be sent between frames, never
inside one), to enforce the rules the relay relies on (masking by direction, no reserved bits
since no extension is negotiated, control frames short and final) and to bound the size of a
message, fragments included.
"""

from __future__ import annotations

import os
import struct

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_KNOWN = frozenset({CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG})

# Close codes (RFC 6455 section 7.4.1).
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011


class FrameError(Exception):
    """The peer broke the protocol; `code` is the close code to answer with. `offset` is where
    the offending frame began in the data fed, or -1 when it began in an earlier chunk: the
    bytes before it are good frames, and after them the stream is between frames."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.offset = -1


class FrameTracker:
    """Where one direction's byte stream is: inside a header, or inside a payload."""

    def __init__(self, *, masked: bool, max_message: int) -> None:
        self.masked = masked  # frames in this direction must be masked (client to server)
        self.max_message = max_message
        self._header = b""
        self._remaining = 0  # payload bytes of the current frame still to come
        self._message = 0  # bytes of the message being assembled (fragments so far)
        self._in_message = False
        self._control: bytes | None = None  # payload of a close frame being read
        self._control_mask = b""
        self.close_code: int | None = None  # set once a close frame went by
        self.close_reason = ""

    @property
    def at_boundary(self) -> bool:
        """Nothing of a frame is half sent: a frame of our own may go now."""
        return not self._header and self._remaining == 0

    def feed(self, data: bytes) -> None:
        """Account for `data`; FrameError if it breaks the rules."""
        position, end = 0, len(data)
        while position < end:
            if self._remaining:
                take = min(self._remaining, end - position)
                if self._control is not None:
                    self._control += data[position : position + take]
                self._remaining -= take
                position += take
                if not self._remaining and self._control is not None:
                    self._closed(self._control)
                continue
            header_start = position if not self._header else -1
            take = min(14 - len(self._header), end - position)
            self._header += data[position : position + take]
            try:
                size = self._parse_header()
            except FrameError as error:
                error.offset = header_start
                raise
            if size is None:
                position += take
                continue
            position += take - (len(self._header) - size)  # bytes past the header go back
            self._header = b""

    def _parse_header(self) -> int | None:
        """Length of the complete header at the start of self._header, or None for more."""
        header = self._header
        if len(header) < 2:
            return None
        first, second = header[0], header[1]
        fin, rsv, opcode = first & 0x80, first & 0x70, first & 0x0F
        masked, length = second & 0x80, second & 0x7F
        size = 2
        if length == 126:
            size = 4
        elif length == 127:
            size = 10
        if masked:
            size += 4
        if len(header) < size:
            return None
        if rsv:
            raise FrameError(PROTOCOL_ERROR, "reserved bits set without an extension")
        if opcode not in _KNOWN:
            raise FrameError(PROTOCOL_ERROR, "unknown opcode")
        if bool(masked) != self.masked:
            raise FrameError(PROTOCOL_ERROR, "frame masking is wrong for its direction")
        if length == 126:
            length = struct.unpack("!H", header[2:4])[0]
        elif length == 127:
            length = struct.unpack("!Q", header[2:10])[0]
            if length >> 63:
                raise FrameError(PROTOCOL_ERROR, "a 64-bit length with its top bit set")
        if opcode >= CLOSE:
            if not fin or length > 125:
                raise FrameError(PROTOCOL_ERROR, "control frames are final and short")
            if opcode == CLOSE:
                if length == 1:
                    raise FrameError(PROTOCOL_ERROR, "a close frame with half a code")
                self._control = b""
                self._control_mask = header[size - 4 : size] if masked else b""
                if length == 0:
                    self._closed(b"")
        else:
            if opcode == CONTINUATION and not self._in_message:
                raise FrameError(PROTOCOL_ERROR, "a continuation frame with no message")
            if opcode != CONTINUATION and self._in_message:
                raise FrameError(PROTOCOL_ERROR, "a new message inside a fragmented one")
            self._message = (self._message if opcode == CONTINUATION else 0) + length
            if self._message > self.max_message:
                raise FrameError(MESSAGE_TOO_BIG, "the message is too big")
            self._in_message = not fin
        self._remaining = length
        return size

    def _closed(self, payload: bytes) -> None:
        if self._control_mask:
            mask = self._control_mask
            payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self._control = None
        if len(payload) >= 2:
            self.close_code = struct.unpack("!H", payload[:2])[0]
            self.close_reason = payload[2:].decode("utf-8", "replace")
        else:
            self.close_code = 1005  # no status received


def close_frame(code: int, reason: str = "", *, masked: bool) -> bytes:
    """A close frame with `code` and `reason`, masked when the gateway acts as the client."""
    # At most 123 bytes of reason, cut between characters, never inside one.
    text = reason.encode()[:123].decode("utf-8", "ignore").encode()
    payload = struct.pack("!H", code) + text
    if not masked:
        return bytes((0x80 | CLOSE, len(payload))) + payload
    mask = os.urandom(4)
    body = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes((0x80 | CLOSE, 0x80 | len(payload))) + mask + body
