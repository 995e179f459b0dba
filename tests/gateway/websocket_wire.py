"""WebSocket frames as the tests write and read them (RFC 6455 section 5.2): one encoder and one
decoder of their own, independent of the gateway's (gateway/websocket/frames.py), so that a
test checks the gateway against the RFC and not against itself."""

from __future__ import annotations

import struct
from dataclasses import dataclass

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bytes | None = None,
    rsv: int = 0,
    length_bytes: int | None = None,
) -> bytes:
    """One frame as RFC 6455 section 5.2 lays it out. `length_bytes` forces the 0 (7-bit), 2
    (16-bit) or 8 (64-bit) byte length encoding; by default the shortest."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload)
    if length_bytes is None:
        length_bytes = 0 if size < 126 else 2 if size < 65536 else 8
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes == 0:
        head = bytes((first, mask_bit | size))
    elif length_bytes == 2:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", size)
    else:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", size)
    if mask is None:
        return head + payload
    return head + mask + unmasked(payload, mask)


def unmasked(payload: bytes, key: bytes) -> bytes:
    """`payload` XORed with the four-byte masking key (masking and unmasking are the same)."""
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes  # unmasked
    masked: bool
    payload_start: int  # offset of the payload in the bytes read (just past the header)
    end: int  # offset just past the frame

    @property
    def code(self) -> int | None:
        """A close frame's status code (None for a close frame without one)."""
        assert self.opcode == CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None


def frame_at(data: bytes, position: int) -> Frame | None:
    """The frame that starts at `position` of `data`, or None if `data` ends before it does."""
    if len(data) - position < 2:
        return None
    first, second = data[position], data[position + 1]
    length, cursor = second & 0x7F, position + 2
    if length in (126, 127):
        size = 2 if length == 126 else 8
        if len(data) < cursor + size:
            return None
        length = int.from_bytes(data[cursor : cursor + size], "big")
        cursor += size
    key = b""
    if second & 0x80:
        if len(data) < cursor + 4:
            return None
        key = data[cursor : cursor + 4]
        cursor += 4
    if len(data) < cursor + length:
        return None
    payload = data[cursor : cursor + length]
    if key:
        payload = unmasked(payload, key)
    return Frame(bool(first & 0x80), first & 0x0F, payload, bool(key), cursor, cursor + length)


def decode_all(data: bytes) -> tuple[list[Frame], bytes]:
    """Every complete frame of `data`, and what is left (an incomplete frame)."""
    frames = []
    position = 0
    while (found := frame_at(data, position)) is not None:
        frames.append(found)
        position = found.end
    return frames, data[position:]
