"""FrameTracker (gateway/websocket/frames.py) against RFC 6455 section 5, fed the way TCP
delivers: whole, in two pieces split at every position, one byte at a time, and in random
pieces. An independent parser in this file says where every frame ends; the tracker must say
`at_boundary` exactly there and nowhere else, refuse what the RFC forbids (at the byte that
completes the offending header, wherever the header was split) and read close frames."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

import pytest

from gateway.websocket.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    MESSAGE_TOO_BIG,
    PING,
    PONG,
    PROTOCOL_ERROR,
    TEXT,
    FrameError,
    FrameTracker,
    close_frame,
)
from tests.gateway.websocket_wire import Frame, decode_all, frame

MASK = b"\x37\xfa\x21\x3d"


def masked(opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    return frame(opcode, payload, mask=MASK, **kwargs)  # type: ignore[arg-type]


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def reference_frames(stream: bytes) -> list[Frame]:
    """Where each frame of `stream` ends (the tests' own whole-buffer parser, for comparison)."""
    frames, rest = decode_all(stream)
    assert rest == b"", "the stream ends inside a frame"
    return frames


def boundaries_byte_by_byte(tracker: FrameTracker, stream: bytes) -> list[int]:
    """Feed one byte at a time; the offsets after which the tracker said `at_boundary`."""
    seen = []
    for offset in range(len(stream)):
        tracker.feed(stream[offset : offset + 1])
        if tracker.at_boundary:
            seen.append(offset + 1)
    return seen


def chunks(stream: bytes, rng: random.Random, largest: int) -> Iterator[bytes]:
    position = 0
    while position < len(stream):
        size = rng.randint(1, largest)
        yield stream[position : position + size]
        position += size


# A stream from the client (masked) and one from the server (unmasked) with every shape of
# frame: 7-bit, 16-bit and 64-bit lengths, empty frames, a fragmented message with every
# control frame between its fragments, and a close with a code and a reason at the end.
def conversation(mask: bytes | None) -> bytes:
    def f(opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
        return frame(opcode, payload, mask=mask, **kwargs)  # type: ignore[arg-type]

    return b"".join(
        [
            f(TEXT, b"hello"),
            f(BINARY, b""),  # a zero-length data frame
            f(TEXT, b"x" * 125),  # the largest 7-bit length
            f(BINARY, bytes(range(256)) * 1),  # 16-bit length
            f(TEXT, b"y" * 126),  # the smallest 16-bit length
            f(BINARY, b"z" * 65535),  # the largest 16-bit length
            f(BINARY, b"w" * 65536),  # the smallest 64-bit length
            # Non-minimal length encodings: section 5.2 says the minimal MUST be used, but the
            # tracker (like most endpoints) accepts them; what matters here is that it reads them.
            f(TEXT, b"short", length_bytes=2),
            f(BINARY, b"tiny", length_bytes=8),
            f(PING, b""),
            f(PING, b"p" * 125),  # the largest control frame
            f(PONG, b"pong"),
            # A fragmented message with control frames between the fragments (section 5.4).
            f(TEXT, b"frag-1 ", fin=False),
            f(PING, b"between"),
            f(CONTINUATION, b"", fin=False),  # an empty fragment
            f(PONG, b""),
            f(CONTINUATION, b"frag-2 ", fin=False),
            f(CONTINUATION, b"frag-3", fin=True),
            f(BINARY, b"b1", fin=False),
            f(CONTINUATION, b"b2", fin=True),
            f(CLOSE, close_payload(4001, "bye \u00e9")),
        ]
    )


@pytest.mark.parametrize("client", [True, False], ids=["client-masked", "server-unmasked"])
def test_byte_by_byte_every_frame_end_is_a_boundary_and_nothing_else(client: bool) -> None:
    stream = conversation(MASK if client else None)
    expected = [parsed.end for parsed in reference_frames(stream)]
    tracker = FrameTracker(masked=client, max_message=1 << 20)
    assert tracker.at_boundary
    assert boundaries_byte_by_byte(tracker, stream) == expected
    assert tracker.close_code == 4001
    assert tracker.close_reason == "bye \u00e9"


@pytest.mark.parametrize("client", [True, False], ids=["client-masked", "server-unmasked"])
def test_the_whole_stream_in_one_piece(client: bool) -> None:
    tracker = FrameTracker(masked=client, max_message=1 << 20)
    tracker.feed(conversation(MASK if client else None))
    assert tracker.at_boundary
    assert tracker.close_code == 4001
    assert tracker.close_reason == "bye \u00e9"


def test_a_split_at_every_position_of_small_frames() -> None:
    """Two pieces, split at every byte: headers cut anywhere (in the first two bytes, inside
    the extended length, inside the mask) and payloads cut anywhere."""
    stream = b"".join(
        [
            masked(TEXT, b"a" * 130),  # 16-bit length, masked: a 8-byte header
            masked(BINARY, b""),
            masked(PING, b"ping"),
            masked(TEXT, b"f1", fin=False),
            masked(PONG, b""),
            masked(CONTINUATION, b"f2"),
            masked(BINARY, b"q" * 7, length_bytes=8),  # 64-bit length, masked: 14 bytes
            masked(CLOSE, close_payload(1000, "done")),
        ]
    )
    ends = {parsed.end for parsed in reference_frames(stream)}
    for split in range(len(stream) + 1):
        tracker = FrameTracker(masked=True, max_message=1000)
        tracker.feed(stream[:split])
        assert tracker.at_boundary == (split == 0 or split in ends), split
        assert (tracker.close_code is None) == (split < len(stream))
        tracker.feed(stream[split:])
        assert tracker.at_boundary, split
        assert tracker.close_code == 1000, split
        assert tracker.close_reason == "done"


def test_random_pieces_agree_with_the_reference() -> None:
    rng = random.Random(6455)
    for client in (True, False):
        stream = conversation(MASK if client else None)
        ends = {parsed.end for parsed in reference_frames(stream)}
        for largest in (2, 3, 7, 13, 14, 15, 200, 70000):
            tracker = FrameTracker(masked=client, max_message=1 << 20)
            position = 0
            for piece in chunks(stream, rng, largest):
                tracker.feed(piece)
                position += len(piece)
                assert tracker.at_boundary == (position in ends), (largest, position)
            assert tracker.close_code == 4001


def test_an_empty_feed_changes_nothing() -> None:
    tracker = FrameTracker(masked=False, max_message=10)
    tracker.feed(b"")
    assert tracker.at_boundary
    tracker.feed(b"\x81")
    tracker.feed(b"")
    assert not tracker.at_boundary
    tracker.feed(b"\x00")
    assert tracker.at_boundary


# -- close frames --------------------------------------------------------------------------------


@pytest.mark.parametrize("client", [True, False], ids=["masked", "unmasked"])
def test_a_close_without_payload_is_seen_as_soon_as_its_header_is_complete(client: bool) -> None:
    data = frame(CLOSE, mask=MASK if client else None)
    tracker = FrameTracker(masked=client, max_message=10)
    for byte in data[:-1]:
        tracker.feed(bytes((byte,)))
        assert tracker.close_code is None
    tracker.feed(data[-1:])
    assert tracker.close_code == 1005  # no status received (section 7.1.5)
    assert tracker.close_reason == ""
    assert tracker.at_boundary


@pytest.mark.parametrize("client", [True, False], ids=["masked", "unmasked"])
def test_a_close_with_a_code_only(client: bool) -> None:
    data = frame(CLOSE, struct.pack("!H", 1001), mask=MASK if client else None)
    tracker = FrameTracker(masked=client, max_message=10)
    assert boundaries_byte_by_byte(tracker, data) == [len(data)]
    assert tracker.close_code == 1001
    assert tracker.close_reason == ""


@pytest.mark.parametrize("client", [True, False], ids=["masked", "unmasked"])
def test_a_close_code_is_known_only_when_the_whole_payload_went_by(client: bool) -> None:
    reason = "r" * 123  # the longest reason a close frame can hold
    data = frame(CLOSE, close_payload(3000, reason), mask=MASK if client else None)
    tracker = FrameTracker(masked=client, max_message=10)
    for offset in range(len(data) - 1):
        tracker.feed(data[offset : offset + 1])
        assert tracker.close_code is None, offset
        assert not tracker.at_boundary
    tracker.feed(data[-1:])
    assert (tracker.close_code, tracker.close_reason) == (3000, reason)


def test_the_close_mask_is_applied_per_payload_offset_whatever_the_pieces() -> None:
    """The mask index runs over the payload, not over each piece: split the masked payload at
    every position (an off-by-one on the key index would garble the code or the reason)."""
    reason = "abcdefghij\u00fc"
    data = masked(CLOSE, close_payload(4321, reason))
    for split in range(len(data) + 1):
        tracker = FrameTracker(masked=True, max_message=10)
        tracker.feed(data[:split])
        tracker.feed(data[split:])
        assert (tracker.close_code, tracker.close_reason) == (4321, reason), split


def test_a_close_in_the_middle_of_a_fragmented_message() -> None:
    """Control frames, close included, may come between fragments (section 5.4)."""
    stream = masked(TEXT, b"part", fin=False) + masked(CLOSE, close_payload(1000))
    tracker = FrameTracker(masked=True, max_message=100)
    assert boundaries_byte_by_byte(tracker, stream) == [
        parsed.end for parsed in reference_frames(stream)
    ]
    assert tracker.close_code == 1000


def test_ping_and_pong_payloads_are_not_taken_for_a_close() -> None:
    stream = frame(PING, close_payload(1000, "x")) + frame(PONG, close_payload(1001, "y"))
    tracker = FrameTracker(masked=False, max_message=100)
    tracker.feed(stream)
    assert tracker.close_code is None
    assert tracker.at_boundary


def test_frames_after_a_close_are_still_followed() -> None:
    stream = frame(CLOSE, close_payload(1000)) + frame(TEXT, b"late") + frame(PING)
    tracker = FrameTracker(masked=False, max_message=100)
    assert boundaries_byte_by_byte(tracker, stream) == [
        parsed.end for parsed in reference_frames(stream)
    ]
    assert tracker.close_code == 1000


# -- message size --------------------------------------------------------------------------------


def test_a_message_of_exactly_the_limit_passes_and_one_more_byte_does_not() -> None:
    tracker = FrameTracker(masked=False, max_message=300)
    tracker.feed(frame(BINARY, b"a" * 300))
    assert tracker.at_boundary
    with pytest.raises(FrameError) as refused:
        tracker.feed(frame(BINARY, b"a" * 301))
    assert refused.value.code == MESSAGE_TOO_BIG


def test_the_limit_counts_the_fragments_together_but_not_the_control_frames_between() -> None:
    tracker = FrameTracker(masked=True, max_message=10)
    tracker.feed(masked(TEXT, b"12345", fin=False))
    tracker.feed(masked(PING, b"p" * 100))  # not part of the message
    tracker.feed(masked(CONTINUATION, b"1234", fin=False))
    tracker.feed(masked(PONG, b"q" * 100))
    tracker.feed(masked(CONTINUATION, b"1"))  # 10 in all: allowed
    assert tracker.at_boundary
    tracker.feed(masked(TEXT, b"1234567890"))  # a new message starts from zero
    tracker.feed(masked(TEXT, b"12345", fin=False))
    with pytest.raises(FrameError) as refused:
        tracker.feed(masked(CONTINUATION, b"123456"))
    assert refused.value.code == MESSAGE_TOO_BIG


def test_a_too_big_message_is_refused_from_its_header_before_any_payload() -> None:
    """The size is known from the header: the refusal comes with the byte that completes it,
    whichever length encoding, wherever the header was split."""
    for length_bytes, size in ((2, 200), (8, 70000), (8, 1 << 62)):
        head = frame(BINARY, b"", length_bytes=length_bytes)[:2]
        head += struct.pack("!H" if length_bytes == 2 else "!Q", size)
        tracker = FrameTracker(masked=False, max_message=100)
        for byte in head[:-1]:
            tracker.feed(bytes((byte,)))
        with pytest.raises(FrameError) as refused:
            tracker.feed(head[-1:])
        assert refused.value.code == MESSAGE_TOO_BIG


# -- protocol errors -----------------------------------------------------------------------------


def _refusals() -> Iterator[object]:
    yield pytest.param(True, frame(TEXT, b"hi"), id="client-frame-unmasked")
    yield pytest.param(False, masked(TEXT, b"hi"), id="server-frame-masked")
    for rsv in (1, 2, 4):
        yield pytest.param(False, frame(TEXT, b"hi", rsv=rsv), id=f"rsv-{rsv}")
    for opcode in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        yield pytest.param(False, frame(opcode, b"x"), id=f"opcode-{opcode:x}")
    for opcode in (CLOSE, PING, PONG):
        yield pytest.param(False, frame(opcode, b"", fin=False), id=f"control-{opcode:x}-not-final")
        yield pytest.param(False, frame(opcode, b"x" * 126), id=f"control-{opcode:x}-126-bytes")
        yield pytest.param(
            False, frame(opcode, b"x" * 126, length_bytes=8), id=f"control-{opcode:x}-64-bit"
        )
    yield pytest.param(False, frame(CONTINUATION, b"x"), id="continuation-without-message")
    yield pytest.param(
        False, frame(TEXT, b"a", fin=False) + frame(BINARY, b"b"), id="new-message-inside-one"
    )
    yield pytest.param(
        False,
        frame(TEXT, b"a", fin=False) + frame(PING) + frame(TEXT, b"b"),
        id="new-message-after-a-ping-inside-one",
    )
    yield pytest.param(
        False,
        frame(TEXT, b"a") + frame(CONTINUATION, b"b"),
        id="continuation-after-a-final-frame",
    )


@pytest.mark.parametrize(("client", "stream"), list(_refusals()))
def test_protocol_errors_are_refused_with_1002_however_the_bytes_come(
    client: bool, stream: bytes
) -> None:
    # Whole.
    with pytest.raises(FrameError) as refused:
        FrameTracker(masked=client, max_message=1000).feed(stream)
    assert refused.value.code == PROTOCOL_ERROR
    # One byte at a time: the error comes with the byte completing the bad frame's header.
    header_end = reference_frames(stream)[-1].payload_start
    tracker = FrameTracker(masked=client, max_message=1000)
    for offset in range(header_end - 1):
        tracker.feed(stream[offset : offset + 1])
    with pytest.raises(FrameError) as refused:
        tracker.feed(stream[header_end - 1 : header_end])
    assert refused.value.code == PROTOCOL_ERROR
    # In two pieces, split anywhere before the header is complete.
    for split in range(header_end):
        tracker = FrameTracker(masked=client, max_message=1000)
        tracker.feed(stream[:split])
        with pytest.raises(FrameError):
            tracker.feed(stream[split:])


def test_a_refusal_carries_a_reason() -> None:
    with pytest.raises(FrameError) as refused:
        FrameTracker(masked=True, max_message=10).feed(frame(TEXT, b"x"))
    assert refused.value.reason
    assert str(refused.value) == refused.value.reason


# -- close_frame -----------------------------------------------------------------------------------


def test_close_frame_unmasked_layout() -> None:
    data = close_frame(1008, "revoked", masked=False)
    assert data == bytes((0x88, 9)) + struct.pack("!H", 1008) + b"revoked"


def test_close_frame_masked_layout_and_payload() -> None:
    data = close_frame(1001, "going", masked=True)
    assert data[0] == 0x88
    assert data[1] == 0x80 | 7
    (parsed,) = reference_frames(data)
    assert parsed.opcode == CLOSE
    assert parsed.payload == struct.pack("!H", 1001) + b"going"


@pytest.mark.parametrize("as_client", [True, False], ids=["masked", "unmasked"])
def test_close_frame_is_read_back_by_the_tracker(as_client: bool) -> None:
    data = close_frame(1011, "internal", masked=as_client)
    tracker = FrameTracker(masked=as_client, max_message=10)
    assert boundaries_byte_by_byte(tracker, data) == [len(data)]
    assert (tracker.close_code, tracker.close_reason) == (1011, "internal")


def test_close_frame_keeps_a_long_reason_within_a_control_frame() -> None:
    for as_client in (True, False):
        data = close_frame(1000, "r" * 500, masked=as_client)
        (parsed,) = reference_frames(data)
        assert len(parsed.payload) == 125
        FrameTracker(masked=as_client, max_message=10).feed(data)  # a valid control frame


def test_close_frame_cuts_a_long_reason_on_a_character_boundary() -> None:
    """RFC 6455 section 5.5.1: the reason is UTF-8; a receiver fails the connection on an invalid
    one (1007). Cutting at 123 bytes must not split a multi-byte character."""
    data = close_frame(1000, "\u00e9" * 100, masked=False)  # 200 bytes of UTF-8
    (parsed,) = reference_frames(data)
    assert len(parsed.payload) <= 125
    parsed.payload[2:].decode("utf-8")  # strict: raises on a split character
